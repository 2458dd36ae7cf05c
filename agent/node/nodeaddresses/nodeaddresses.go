// Package nodeaddresses publishes the agent's addresses on its own Node as
// the annotations (shared/nodeips) that the kedge cloud provider
// (server/controllers/kedgecloud) reads: the
// kubelet runs with --cloud-provider=external, so the server's cloud node
// controller sets the Node's InternalIP and ExternalIP addresses from
// them and then removes the taint node.cloudprovider.kubernetes.io/uninitialized.
package nodeaddresses

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/kedge/kedge/embedded/backoff"
	"github.com/kedge/kedge/embedded/component"
	"github.com/kedge/kedge/shared/controlloop"
	"github.com/kedge/kedge/shared/nodeips"
)

// Publisher keeps the annotations on the Node, also when the Node is
// deleted and registered again or someone edits them.
type Publisher struct {
	// Client has the node's own credentials (NodeRestriction lets a node
	// patch only its own Node).
	Client      kubernetes.Interface
	Node        string
	InternalIP  net.IP
	ExternalIPs []net.IP
	// Extra are further annotations the agent keeps on its Node (such as
	// its local storage directory, localpath.StoragePathAnnotation).
	Extra map[string]string
	Log   *slog.Logger
}

var _ component.Component = (*Publisher)(nil)

// Name implements component.Component.
func (p *Publisher) Name() string { return "node-addresses" }

// Annotations are the wanted annotation values; a nil value removes the
// annotation.
func (p *Publisher) Annotations() map[string]*string {
	internal := p.InternalIP.String()
	want := map[string]*string{nodeips.InternalIPAnnotation: &internal, nodeips.ExternalIPAnnotation: nil}
	if len(p.ExternalIPs) > 0 {
		external := nodeips.JoinIPs(p.ExternalIPs)
		want[nodeips.ExternalIPAnnotation] = &external
	}
	for k, v := range p.Extra {
		want[k] = &v
	}
	return want
}

// Run is ready at once (it must not hold up an agent that starts offline).
// It watches the Node and patches it whenever the annotations differ from
// Annotations, retrying every 2 s after a failure, until ctx ends.
func (p *Publisher) Run(ctx context.Context, ready func()) error {
	ready()
	want := p.Annotations()
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": want}})
	if err != nil {
		return err
	}
	informer := cache.NewSharedIndexInformer(
		cache.NewListWatchFromClient(p.Client.CoreV1().RESTClient(), "nodes", metav1.NamespaceNone,
			fields.OneTermEqualSelector(metav1.ObjectNameField, p.Node)),
		&corev1.Node{}, 0, cache.Indexers{})
	loop := &controlloop.Loop[bool]{
		Watch: []cache.SharedIndexInformer{informer},
		// Reconcile patches the Node when it lacks want; it decides whether
		// it patched.
		Reconcile: func(ctx context.Context) (bool, error) {
			obj, exists, err := informer.GetStore().GetByKey(p.Node)
			if err != nil || !exists || Published(obj.(*corev1.Node), want) {
				return false, nil
			}
			if _, err := p.Client.CoreV1().Nodes().Patch(ctx, p.Node, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
				return false, err
			}
			p.Log.Info("published the node's addresses", "internal_ip", p.InternalIP, "external_ips", nodeips.JoinIPs(p.ExternalIPs))
			return true, nil
		},
		Retry:     backoff.Backoff{Min: 2 * time.Second},
		What:      "publish the node's addresses",
		FailLevel: slog.LevelDebug,
		Log:       p.Log,
	}
	return loop.Run(ctx, nil)
}

// Published reports whether node carries the wanted annotations.
func Published(node *corev1.Node, want map[string]*string) bool {
	for k, v := range want {
		got, ok := node.Annotations[k]
		if (v == nil && ok) || (v != nil && (!ok || got != *v)) {
			return false
		}
	}
	return true
}

// Initialized is ready once the Node no longer has the taint
// node.cloudprovider.kubernetes.io/uninitialized and its InternalIP and
// ExternalIP addresses are InternalIP and ExternalIPs (see Settled), that
// is, once the server's cloud node controller caught up with what the
// Publisher published; or after Timeout (default 20 s), so that a server
// whose controllers are down, or a start without a server after the
// addresses changed, does not hold the agent up. kube-proxy starts after
// it: it exits when the Node's IPs change after it started (after a new
// --node-ip, or an ExternalIP of the other IP family).
type Initialized struct {
	Client      kubernetes.Interface
	Node        string
	InternalIP  net.IP
	ExternalIPs []net.IP
	Timeout     time.Duration
	Log         *slog.Logger
}

var _ component.Component = (*Initialized)(nil)

// Name implements component.Component.
func (w *Initialized) Name() string { return "node-initialized" }

// Run implements component.Component; it polls the Node every 250 ms until
// ready, then waits for ctx.
func (w *Initialized) Run(ctx context.Context, ready func()) error {
	timeout := w.Timeout
	if timeout <= 0 {
		timeout = 20 * time.Second
	}
	deadline := time.After(timeout)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		node, err := w.Client.CoreV1().Nodes().Get(ctx, w.Node, metav1.GetOptions{})
		if err == nil && Settled(node, w.InternalIP, w.ExternalIPs) {
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-deadline:
			var addrs []corev1.NodeAddress
			if node != nil {
				addrs = node.Status.Addresses
			}
			w.Log.Warn("the node is not initialized by the server's cloud node controller with its addresses yet; going on",
				"waited", timeout, "addresses", addrs, "error", err)
			ready()
			<-ctx.Done()
			return nil
		case <-tick.C:
		}
	}
	ready()
	<-ctx.Done()
	return nil
}

// Settled reports whether node is initialized (no uninitialized taint) and
// its InternalIP addresses are just internal and its ExternalIP addresses
// are external, in any order.
func Settled(node *corev1.Node, internal net.IP, external []net.IP) bool {
	if nodeips.Uninitialized(node) {
		return false
	}
	same := func(typ corev1.NodeAddressType, want []net.IP) bool {
		var got []net.IP
		for _, a := range node.Status.Addresses {
			if a.Type == typ {
				got = append(got, net.ParseIP(a.Address))
			}
		}
		if len(got) != len(want) {
			return false
		}
		for _, w := range want {
			if !slices.ContainsFunc(got, w.Equal) {
				return false
			}
		}
		return true
	}
	return same(corev1.NodeInternalIP, []net.IP{internal}) && same(corev1.NodeExternalIP, external)
}

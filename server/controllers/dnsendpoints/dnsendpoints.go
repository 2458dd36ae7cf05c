// Package dnsendpoints keeps one EndpointSlice per Node for the cluster DNS
// Service (kube-system/kube-dns, see agent/network/clusterdns): each names its
// node's InternalIP at clusterdns.Port with nodeName set, so that
// kube-proxy, with the Service's internalTrafficPolicy Local, sends every
// pod's queries to the DNS in its own node's agent. A node's slice stays
// while the node is unreachable (its own kube-proxy keeps using the copy in
// its cache) and goes when the Node is deleted.
//
// It acts only while the kube-dns Service carries clusterdns.ManagedLabel:
// without it (another DNS, or `--disable coredns`) it deletes its slices.
// The slices are owned by the Service, so deleting the Service removes
// them too.
package dnsendpoints

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/kedge/kedge/agent/network/clusterdns"
	"github.com/kedge/kedge/embedded/backoff"
	"github.com/kedge/kedge/embedded/component"
	"github.com/kedge/kedge/shared/controlloop"
)

// ManagedBy is the endpointslice.kubernetes.io/managed-by value of the
// slices this controller writes (the upstream EndpointSlice controllers
// leave them alone).
const ManagedBy = "cluster-dns.kedge.io"

// Controller writes the slices as a component.
type Controller struct {
	Client kubernetes.Interface
	// Resync is how often everything is reconciled even without a change
	// (default 5 minutes), repairing edits to the slices.
	Resync time.Duration
	Log    *slog.Logger
	// Decided, if set, is called after each reconcile with the changes it
	// planned and its error (see controlloop.Loop.Decided).
	Decided func(Changes, error)
}

var _ component.Component = (*Controller)(nil)

// Name implements component.Component.
func (c *Controller) Name() string { return "cluster-dns-endpoints" }

// Run implements component.Component: it is ready once its caches of
// Nodes, the Service and its slices are synced, reconciles on every change
// of them (a failed write is retried with backoff up to 30 s), and returns
// when ctx ends.
func (c *Controller) Run(ctx context.Context, ready func()) error {
	resync := c.Resync
	if resync <= 0 {
		resync = 5 * time.Minute
	}
	nodes := informers.NewSharedInformerFactory(c.Client, resync).Core().V1().Nodes()
	svcs := informers.NewSharedInformerFactoryWithOptions(c.Client, resync, informers.WithNamespace(clusterdns.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", clusterdns.ServiceName).String()
		})).Core().V1().Services()
	slices := informers.NewSharedInformerFactoryWithOptions(c.Client, resync, informers.WithNamespace(clusterdns.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.LabelSelector = labels.SelectorFromSet(labels.Set{discoveryv1.LabelManagedBy: ManagedBy}).String()
		})).Discovery().V1().EndpointSlices()
	loop := &controlloop.Loop[Changes]{
		Watch: []cache.SharedIndexInformer{nodes.Informer(), svcs.Informer(), slices.Informer()},
		Reconcile: func(ctx context.Context) (Changes, error) {
			nodeList, _ := nodes.Lister().List(labels.Everything())
			sliceList, _ := slices.Lister().EndpointSlices(clusterdns.Namespace).List(labels.Everything())
			svc, err := svcs.Lister().Services(clusterdns.Namespace).Get(clusterdns.ServiceName)
			if err != nil {
				svc = nil
			}
			ch := Plan(Desired(svc, nodeList), sliceList)
			return ch, c.reconcile(ctx, ch)
		},
		Retry:   backoff.Backoff{Min: time.Second, Max: 30 * time.Second},
		What:    "update the cluster DNS endpoint slices",
		Log:     c.Log,
		Decided: c.Decided,
	}
	return loop.Run(ctx, ready)
}

// Changes is what reconciling writes.
type Changes struct {
	Create, Update []*discoveryv1.EndpointSlice
	Delete         []string
}

func (c *Controller) reconcile(ctx context.Context, ch Changes) error {
	api := c.Client.DiscoveryV1().EndpointSlices(clusterdns.Namespace)
	var errs []error
	for _, s := range ch.Create {
		if _, err := api.Create(ctx, s, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			errs = append(errs, fmt.Errorf("create endpointslice %s: %w", s.Name, err))
		} else if err == nil {
			c.Log.Info("cluster DNS endpoint added", "node", ptr.Deref(s.Endpoints[0].NodeName, ""), "address", s.Endpoints[0].Addresses[0])
		}
	}
	for _, s := range ch.Update {
		if _, err := api.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			errs = append(errs, fmt.Errorf("update endpointslice %s: %w", s.Name, err))
		}
	}
	for _, name := range ch.Delete {
		if err := api.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete endpointslice %s: %w", name, err))
		} else if err == nil {
			c.Log.Info("cluster DNS endpoint removed", "endpointslice", name)
		}
	}
	return errors.Join(errs...)
}

// Desired returns the slices for nodes, one per Node with an InternalIP,
// sorted by name; none unless svc is kedge's kube-dns Service.
func Desired(svc *corev1.Service, nodes []*corev1.Node) []*discoveryv1.EndpointSlice {
	if !clusterdns.Managed(svc) {
		return nil
	}
	var out []*discoveryv1.EndpointSlice
	for _, n := range nodes {
		ip := internalIP(n)
		if ip == nil {
			continue // not yet initialized by the cloud node controller
		}
		out = append(out, slice(svc, n.Name, ip))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Plan compares desired with the existing slices (those with ManagedBy).
// An existing slice is updated only when its content differs.
func Plan(desired, existing []*discoveryv1.EndpointSlice) Changes {
	var ch Changes
	have := map[string]*discoveryv1.EndpointSlice{}
	for _, s := range existing {
		have[s.Name] = s
	}
	for _, want := range desired {
		cur, ok := have[want.Name]
		delete(have, want.Name)
		switch {
		case !ok:
			ch.Create = append(ch.Create, want)
		case cur.AddressType != want.AddressType:
			// The address type is immutable: replace the slice.
			ch.Delete = append(ch.Delete, cur.Name)
			ch.Create = append(ch.Create, want)
		case !sameContent(cur, want):
			upd := cur.DeepCopy()
			upd.Labels, upd.OwnerReferences, upd.Endpoints, upd.Ports = want.Labels, want.OwnerReferences, want.Endpoints, want.Ports
			ch.Update = append(ch.Update, upd)
		}
	}
	for name := range have {
		ch.Delete = append(ch.Delete, name)
	}
	sort.Strings(ch.Delete)
	return ch
}

func sameContent(a, b *discoveryv1.EndpointSlice) bool {
	return equality.Semantic.DeepEqual(a.Labels, b.Labels) && equality.Semantic.DeepEqual(a.OwnerReferences, b.OwnerReferences) &&
		equality.Semantic.DeepEqual(a.Endpoints, b.Endpoints) && equality.Semantic.DeepEqual(a.Ports, b.Ports)
}

// SliceName is the name of node's slice: kube-dns-<node>, or a hash of the
// node name when that would be too long for an object name.
func SliceName(node string) string {
	name := clusterdns.ServiceName + "-" + node
	if len(name) > 253 {
		sum := sha256.Sum256([]byte(node))
		name = clusterdns.ServiceName + "-" + hex.EncodeToString(sum[:16])
	}
	return name
}

func slice(svc *corev1.Service, node string, ip net.IP) *discoveryv1.EndpointSlice {
	addressType := discoveryv1.AddressTypeIPv4
	if ip.To4() == nil {
		addressType = discoveryv1.AddressTypeIPv6
	}
	port := int32(clusterdns.Port)
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: SliceName(node), Namespace: clusterdns.Namespace,
			Labels: map[string]string{discoveryv1.LabelServiceName: clusterdns.ServiceName, discoveryv1.LabelManagedBy: ManagedBy},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: svc.Name, UID: svc.UID,
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}},
		},
		AddressType: addressType,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{ip.String()},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
			NodeName:   ptr.To(node),
		}},
		Ports: []discoveryv1.EndpointPort{
			{Name: ptr.To(clusterdns.PortName), Protocol: ptr.To(corev1.ProtocolUDP), Port: &port},
			{Name: ptr.To(clusterdns.TCPPortName), Protocol: ptr.To(corev1.ProtocolTCP), Port: &port},
		},
	}
}

// internalIP is the Node's first InternalIP address.
func internalIP(n *corev1.Node) net.IP {
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			if ip := net.ParseIP(a.Address); ip != nil {
				return ip
			}
		}
	}
	return nil
}

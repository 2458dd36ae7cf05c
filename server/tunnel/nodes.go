package tunnel

import (
	"context"
	"net/netip"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// nodeIndex finds the node that an IP belongs to: one of its InternalIPs or
// an address in its pod CIDRs. It knows nothing until run has synced; wait
// waits for that.
type nodeIndex struct {
	lister atomic.Pointer[corelisters.NodeLister]
	synced chan struct{} // closed once lister is set
}

func newNodeIndex() *nodeIndex { return &nodeIndex{synced: make(chan struct{})} }

// run watches Nodes with client until ctx is done; the index answers once
// the cache has synced.
func (n *nodeIndex) run(ctx context.Context, client kubernetes.Interface) error {
	factory := informers.NewSharedInformerFactory(client, 0)
	nodes := factory.Core().V1().Nodes()
	informer := nodes.Informer()
	// Only addresses and pod CIDRs are read; keep the cache small.
	if err := informer.SetTransform(func(obj any) (any, error) {
		if node, ok := obj.(*corev1.Node); ok {
			return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node.Name, ResourceVersion: node.ResourceVersion},
				Spec:   corev1.NodeSpec{PodCIDR: node.Spec.PodCIDR, PodCIDRs: node.Spec.PodCIDRs},
				Status: corev1.NodeStatus{Addresses: node.Status.Addresses}}, nil
		}
		return obj, nil
	}); err != nil {
		return err
	}
	lister := nodes.Lister()
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		return nil // ctx done
	}
	n.lister.Store(&lister)
	close(n.synced)
	<-ctx.Done()
	return nil
}

// wait reports whether the index has synced, waiting for it until ctx ends.
func (n *nodeIndex) wait(ctx context.Context) bool {
	select {
	case <-n.synced:
		return true
	case <-ctx.Done():
		return false
	}
}

// lookup returns the name of the node that ip belongs to, or "".
func (n *nodeIndex) lookup(ip netip.Addr) string {
	lister := n.lister.Load()
	if lister == nil {
		return ""
	}
	nodes, err := (*lister).List(labels.Everything())
	if err != nil {
		return ""
	}
	return nodeOf(nodes, ip)
}

// nodeOf prefers a node whose InternalIP is ip over one whose pod CIDR
// holds it.
func nodeOf(nodes []*corev1.Node, ip netip.Addr) string {
	ip = ip.Unmap()
	for _, node := range nodes {
		for _, a := range node.Status.Addresses {
			if a.Type != corev1.NodeInternalIP {
				continue
			}
			if addr, err := netip.ParseAddr(a.Address); err == nil && addr.Unmap() == ip {
				return node.Name
			}
		}
	}
	for _, node := range nodes {
		cidrs := node.Spec.PodCIDRs
		if len(cidrs) == 0 && node.Spec.PodCIDR != "" {
			cidrs = []string{node.Spec.PodCIDR}
		}
		for _, c := range cidrs {
			if p, err := netip.ParsePrefix(c); err == nil && p.Contains(ip) {
				return node.Name
			}
		}
	}
	return ""
}

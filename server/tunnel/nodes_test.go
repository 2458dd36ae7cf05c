package tunnel

import (
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The round trip through real sessions is tested in agent/uplink/tunnel, which
// imports this package.

func TestNodeOf(t *testing.T) {
	node := func(name, internal, external string, cidrs ...string) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{PodCIDRs: cidrs}}
		if len(cidrs) > 0 {
			n.Spec.PodCIDR = cidrs[0]
		}
		if internal != "" {
			n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: internal})
		}
		if external != "" {
			n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: external})
		}
		return n
	}
	legacy := node("legacy", "192.0.2.30", "")
	legacy.Spec.PodCIDR = "10.42.9.0/24" // only the singular field set
	nodes := []*corev1.Node{
		node("server", "192.0.2.10", "", "10.42.0.0/24"),
		node("edge", "192.0.2.20", "203.0.113.20", "10.42.1.0/24", "fd00:42:1::/64"),
		// A node whose InternalIP lies in another node's pod CIDR: the IP wins.
		node("odd", "10.42.1.200", ""),
		legacy,
	}
	for ip, want := range map[string]string{
		"192.0.2.10":        "server",
		"192.0.2.20":        "edge",
		"::ffff:192.0.2.20": "edge",
		"10.42.1.7":         "edge",
		"fd00:42:1::7":      "edge",
		"10.42.1.200":       "odd",
		"10.42.9.4":         "legacy",
		"203.0.113.20":      "", // ExternalIPs are not the kubelet's address here
		"10.43.0.1":         "",
	} {
		if got := nodeOf(nodes, netip.MustParseAddr(ip)); got != want {
			t.Errorf("nodeOf(%s) = %q, want %q", ip, got, want)
		}
	}
}

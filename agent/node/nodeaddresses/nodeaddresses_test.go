package nodeaddresses

import (
	"net"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kedge/kedge/shared/nodeips"
)

func TestPublished(t *testing.T) {
	plain := (&Publisher{InternalIP: net.ParseIP("192.0.2.5")}).Annotations()
	public := (&Publisher{InternalIP: net.ParseIP("192.0.2.5"),
		ExternalIPs: []net.IP{net.ParseIP("203.0.113.7"), net.ParseIP("2001:db8::7")}}).Annotations()
	if got := *public[nodeips.ExternalIPAnnotation]; got != "203.0.113.7,2001:db8::7" {
		t.Fatalf("external annotation = %q", got)
	}
	storage := (&Publisher{InternalIP: net.ParseIP("192.0.2.5"), Extra: map[string]string{"kedge.io/local-storage-path": "/srv"}}).Annotations()
	cases := []struct {
		name        string
		annotations map[string]string
		want        map[string]*string
		published   bool
	}{
		{"none yet", nil, plain, false},
		{"plain", map[string]string{nodeips.InternalIPAnnotation: "192.0.2.5", "other": "x"}, plain, true},
		{"stale external", map[string]string{nodeips.InternalIPAnnotation: "192.0.2.5", nodeips.ExternalIPAnnotation: "203.0.113.7"}, plain, false},
		{"other internal", map[string]string{nodeips.InternalIPAnnotation: "192.0.2.6"}, plain, false},
		{"public", map[string]string{nodeips.InternalIPAnnotation: "192.0.2.5", nodeips.ExternalIPAnnotation: "203.0.113.7,2001:db8::7"}, public, true},
		{"public missing", map[string]string{nodeips.InternalIPAnnotation: "192.0.2.5"}, public, false},
		{"extra", map[string]string{nodeips.InternalIPAnnotation: "192.0.2.5", "kedge.io/local-storage-path": "/srv"}, storage, true},
		{"extra missing", map[string]string{nodeips.InternalIPAnnotation: "192.0.2.5"}, storage, false},
		{"extra differs", map[string]string{nodeips.InternalIPAnnotation: "192.0.2.5", "kedge.io/local-storage-path": "/data"}, storage, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", Annotations: tc.annotations}}
			if got := Published(node, tc.want); got != tc.published {
				t.Fatalf("Published = %v, want %v", got, tc.published)
			}
		})
	}
}

func TestSettled(t *testing.T) {
	ip := net.ParseIP
	taint := corev1.Taint{Key: "node.cloudprovider.kubernetes.io/uninitialized", Value: "true", Effect: corev1.TaintEffectNoSchedule}
	addr := func(typ corev1.NodeAddressType, a string) corev1.NodeAddress {
		return corev1.NodeAddress{Type: typ, Address: a}
	}
	internal, host := addr(corev1.NodeInternalIP, "192.0.2.5"), addr(corev1.NodeHostName, "n")
	cases := []struct {
		name     string
		taints   []corev1.Taint
		addrs    []corev1.NodeAddress
		external []net.IP
		want     bool
	}{
		{"registered, no external", nil, []corev1.NodeAddress{internal, host}, nil, true},
		{"still tainted", []corev1.Taint{taint}, []corev1.NodeAddress{internal, host}, nil, false},
		{"external not set yet", nil, []corev1.NodeAddress{internal, host}, []net.IP{ip("203.0.113.7")}, false},
		{"external set", nil, []corev1.NodeAddress{internal, addr(corev1.NodeExternalIP, "2001:db8::7"), addr(corev1.NodeExternalIP, "203.0.113.7"), host},
			[]net.IP{ip("203.0.113.7"), ip("2001:db8::7")}, true},
		{"stale external", nil, []corev1.NodeAddress{internal, addr(corev1.NodeExternalIP, "203.0.113.7"), host}, nil, false},
		{"old internal", nil, []corev1.NodeAddress{addr(corev1.NodeInternalIP, "192.0.2.4"), host}, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			node := &corev1.Node{Spec: corev1.NodeSpec{Taints: tc.taints}, Status: corev1.NodeStatus{Addresses: tc.addrs}}
			if got := Settled(node, ip("192.0.2.5"), tc.external); got != tc.want {
				t.Fatalf("Settled = %v, want %v", got, tc.want)
			}
		})
	}
}

package servicelb

import (
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func node(name string, ready bool, addrs ...corev1.NodeAddress) *corev1.Node {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.NodeStatus{Addresses: addrs, Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st}}}}
}

func internal(ip string) corev1.NodeAddress {
	return corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip}
}
func external(ip string) corev1.NodeAddress {
	return corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: ip}
}

func lbService(name string, age time.Duration, ports ...int32) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name,
		CreationTimestamp: metav1.NewTime(time.Unix(1_700_000_000, 0).Add(-age))},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer}}
	for _, p := range ports {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Port: p, Protocol: corev1.ProtocolTCP})
	}
	return s
}

func TestDesired(t *testing.T) {
	excluded := node("excluded", true, internal("10.0.0.9"))
	excluded.Labels = map[string]string{ExcludeLabel: ""}
	nodes := []*corev1.Node{
		node("b", true, internal("10.0.0.2")),
		node("a", true, internal("10.0.0.1"), external("203.0.113.1"), corev1.NodeAddress{Type: corev1.NodeHostName, Address: "a"}),
		node("down", false, internal("10.0.0.3")),
		excluded,
		node("v6", true, internal("fd00::4")),
	}
	web := lbService("web", time.Hour, 80)
	clash := lbService("clash", time.Minute, 443, 80)
	udp := lbService("dns", time.Minute, 80)
	udp.Spec.Ports[0].Protocol = corev1.ProtocolUDP
	local := lbService("local", time.Minute, 8080)
	local.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	v4only := lbService("v4only", time.Minute, 9090)
	v4only.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
	other := lbService("metallb", time.Minute, 7070)
	other.Spec.LoadBalancerClass = ptr.To("metallb.io/metallb")
	clusterIP := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "plain"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Ports: []corev1.ServicePort{{Port: 80}}}}
	eps := []*discoveryv1.EndpointSlice{{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "local-x", Labels: map[string]string{discoveryv1.LabelServiceName: "local"}},
		Endpoints: []discoveryv1.Endpoint{
			{NodeName: ptr.To("b"), Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}},
			{NodeName: ptr.To("a"), Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false)}},
		},
	}}
	api := lbService("api", 2*time.Hour, 6443)
	got := Desired([]*corev1.Service{clash, web, udp, local, v4only, other, clusterIP, api}, nodes, eps,
		map[string]string{PortKey(corev1.ProtocolTCP, 6443): "the Kubernetes API"})

	all := []string{"10.0.0.1", "203.0.113.1", "10.0.0.2", "fd00::4"}
	want := map[string][]string{
		"default/web":    all,
		"default/dns":    all, // UDP/80 is another port than TCP/80
		"default/local":  {"10.0.0.2"},
		"default/v4only": {"10.0.0.1", "203.0.113.1", "10.0.0.2"},
	}
	if len(got.Ingress) != len(want) {
		t.Errorf("ingress for %d services, want %d: %v", len(got.Ingress), len(want), got.Ingress)
	}
	for k, w := range want {
		if !slices.Equal(got.Ingress[k], w) {
			t.Errorf("%s ingress = %v, want %v", k, got.Ingress[k], w)
		}
	}
	if reason := got.Blocked["default/clash"]; reason != "port TCP/80 is already used by LoadBalancer Service default/web" {
		t.Errorf("clash blocked = %q", reason)
	}
	if reason := got.Blocked["default/api"]; reason != "port TCP/6443 is kedge's own (the Kubernetes API) on the nodes' addresses" {
		t.Errorf("api blocked = %q", reason)
	}
	if _, ok := got.Ingress["default/metallb"]; ok {
		t.Error("a Service with another loadBalancerClass got kedge's ingress")
	}

	// Once the older Service is gone, the newer one gets the port.
	got = Desired([]*corev1.Service{clash}, nodes, nil, nil)
	if !slices.Equal(got.Ingress["default/clash"], all) || len(got.Blocked) != 0 {
		t.Errorf("after web is gone: %v blocked %v", got.Ingress, got.Blocked)
	}
}

// Among Services created in the same second, the one that already serves
// the port keeps it, whatever the names.
func TestDesiredSameSecondKeepsHolder(t *testing.T) {
	nodes := []*corev1.Node{node("a", true, internal("10.0.0.1"))}
	holder := lbService("zz-first", 0, 80)
	holder.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "10.0.0.1"}}
	newer := lbService("aa-second", 0, 80)
	got := Desired([]*corev1.Service{newer, holder}, nodes, nil, nil)
	if !slices.Equal(got.Ingress["default/zz-first"], []string{"10.0.0.1"}) || got.Blocked["default/aa-second"] == "" {
		t.Errorf("ingress %v blocked %v: the holder lost its port", got.Ingress, got.Blocked)
	}
}

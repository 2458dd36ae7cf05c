package dnsendpoints

import (
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/kedge/kedge/agent/network/clusterdns"
	"github.com/kedge/kedge/scripts/testenv"
)

func kubeDNS(managed bool) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: clusterdns.ServiceName, Namespace: clusterdns.Namespace, UID: types.UID("svc-uid")}}
	if managed {
		s.Labels = map[string]string{clusterdns.ManagedLabel: "true"}
	}
	return s
}

func node(name string, ips ...string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeHostName, Address: name})
	for _, ip := range ips {
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip})
	}
	return n
}

func names(ss []*discoveryv1.EndpointSlice) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Name)
	}
	return out
}

func TestDesired(t *testing.T) {
	nodes := []*corev1.Node{node("b", "10.0.0.2"), node("a", "10.0.0.1", "10.0.0.9"), node("new"), node("v6", "2001:db8::6")}
	if got := Desired(nil, nodes); got != nil {
		t.Errorf("no Service: %v", names(got))
	}
	if got := Desired(kubeDNS(false), nodes); got != nil {
		t.Errorf("a kube-dns Service that is not kedge's: %v", names(got))
	}
	got := Desired(kubeDNS(true), nodes)
	if !slices.Equal(names(got), []string{"kube-dns-a", "kube-dns-b", "kube-dns-v6"}) {
		t.Fatalf("slices %v: want one per node with an InternalIP, sorted", names(got))
	}
	a := got[0]
	if a.AddressType != discoveryv1.AddressTypeIPv4 || got[2].AddressType != discoveryv1.AddressTypeIPv6 {
		t.Errorf("address types %s, %s", a.AddressType, got[2].AddressType)
	}
	if a.Labels[discoveryv1.LabelServiceName] != clusterdns.ServiceName || a.Labels[discoveryv1.LabelManagedBy] != ManagedBy {
		t.Errorf("labels %v", a.Labels)
	}
	if len(a.OwnerReferences) != 1 || a.OwnerReferences[0].UID != "svc-uid" || a.OwnerReferences[0].Kind != "Service" {
		t.Errorf("owner %v", a.OwnerReferences)
	}
	ep := a.Endpoints
	if len(ep) != 1 || !slices.Equal(ep[0].Addresses, []string{"10.0.0.1"}) || ptr.Deref(ep[0].NodeName, "") != "a" || !ptr.Deref(ep[0].Conditions.Ready, false) {
		t.Errorf("endpoint %+v: want the first InternalIP, nodeName a, ready", ep)
	}
	if len(a.Ports) != 2 || *a.Ports[0].Name != "dns" || *a.Ports[0].Protocol != corev1.ProtocolUDP || *a.Ports[0].Port != clusterdns.Port ||
		*a.Ports[1].Name != "dns-tcp" || *a.Ports[1].Protocol != corev1.ProtocolTCP || *a.Ports[1].Port != clusterdns.Port {
		t.Errorf("ports %+v", a.Ports)
	}
}

func TestSliceNameOfLongNodeName(t *testing.T) {
	long := strings.Repeat("n", 250)
	if got := SliceName(long); len(got) > 253 || got == SliceName(long[:249]) {
		t.Errorf("SliceName(250 chars) = %q (%d chars)", got, len(got))
	}
	if SliceName("edge-1") != "kube-dns-edge-1" {
		t.Errorf("SliceName(edge-1) = %q", SliceName("edge-1"))
	}
}

func TestPlan(t *testing.T) {
	want := Desired(kubeDNS(true), []*corev1.Node{node("a", "10.0.0.1"), node("b", "10.0.0.2"), node("c", "2001:db8::3")})
	moved := Desired(kubeDNS(true), []*corev1.Node{node("b", "10.0.0.20")})[0]
	wrongType := Desired(kubeDNS(true), []*corev1.Node{node("c", "10.0.0.3")})[0]
	unchanged := want[0].DeepCopy()
	unchanged.ResourceVersion = "7" // server-set fields do not count
	stale := Desired(kubeDNS(true), []*corev1.Node{node("gone", "10.0.0.4")})[0]

	ch := Plan(want, []*discoveryv1.EndpointSlice{unchanged, moved, wrongType, stale})
	if len(ch.Update) != 1 || ch.Update[0].Name != "kube-dns-b" || ch.Update[0].Endpoints[0].Addresses[0] != "10.0.0.2" {
		t.Errorf("updates %v: want b's address back to 10.0.0.2", names(ch.Update))
	}
	if !slices.Equal(names(ch.Create), []string{"kube-dns-c"}) || !slices.Equal(ch.Delete, []string{"kube-dns-c", "kube-dns-gone"}) {
		t.Errorf("create %v delete %v: want c replaced (address type is immutable) and gone deleted", names(ch.Create), ch.Delete)
	}
	if ch := Plan(want, want); len(ch.Create)+len(ch.Update)+len(ch.Delete) != 0 {
		t.Errorf("nothing to do, got %+v", ch)
	}
	if ch := Plan(nil, want); len(ch.Delete) != 3 {
		t.Errorf("Service gone: deletes %v, want all three", ch.Delete)
	}
}

// TestControllerFollowsNodesAndService runs the controller against a fake
// API: slices appear for the nodes, follow a node's IP and its deletion,
// and all go when the Service loses the label.
func TestControllerFollowsNodesAndService(t *testing.T) {
	ctx := t.Context()
	client := fake.NewClientset(kubeDNS(true), node("a", "10.0.0.1"), node("b", "10.0.0.2"))
	// reconciled holds a wake-up once a reconcile is done.
	reconciled := make(chan struct{}, 1)
	c := &Controller{Client: client, Log: slog.New(slog.DiscardHandler), Decided: func(Changes, error) {
		select {
		case reconciled <- struct{}{}:
		default:
		}
	}}
	testenv.Start(t, c.Run).WaitReady(10 * time.Second)
	slicesNow := func() map[string]string {
		l, err := client.DiscoveryV1().EndpointSlices(clusterdns.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, s := range l.Items {
			out[s.Name] = s.Endpoints[0].Addresses[0]
		}
		return out
	}
	// eventually checks the slices after each reconcile until they are want.
	eventually := func(what string, want map[string]string) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			got := slicesNow()
			if len(got) == len(want) && func() bool {
				for k, v := range want {
					if got[k] != v {
						return false
					}
				}
				return true
			}() {
				return
			}
			select {
			case <-reconciled:
			case <-deadline:
				t.Fatalf("%s: slices %v, want %v", what, got, want)
			}
		}
	}
	eventually("start", map[string]string{"kube-dns-a": "10.0.0.1", "kube-dns-b": "10.0.0.2"})

	if _, err := client.CoreV1().Nodes().Update(ctx, node("b", "10.0.0.22"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Nodes().Create(ctx, node("c", "10.0.0.3"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := client.CoreV1().Nodes().Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually("nodes changed", map[string]string{"kube-dns-b": "10.0.0.22", "kube-dns-c": "10.0.0.3"})

	// A slice edited by hand is put back.
	s, err := client.DiscoveryV1().EndpointSlices(clusterdns.Namespace).Get(ctx, "kube-dns-c", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Endpoints[0].Addresses = []string{"192.0.2.1"}
	if _, err := client.DiscoveryV1().EndpointSlices(clusterdns.Namespace).Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually("repair", map[string]string{"kube-dns-b": "10.0.0.22", "kube-dns-c": "10.0.0.3"})

	if _, err := client.CoreV1().Services(clusterdns.Namespace).Update(ctx, kubeDNS(false), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually("the Service is no longer kedge's", map[string]string{})
}

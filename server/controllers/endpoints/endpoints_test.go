package endpoints

import (
	"log/slog"
	"net"
	"slices"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
)

func reconciler(cs kubernetes.Interface, server, ip string) *Reconciler {
	return &Reconciler{Client: cs, Server: server, IP: net.ParseIP(ip), Port: 6443, Log: slog.New(slog.DiscardHandler)}
}

func addresses(t *testing.T, cs kubernetes.Interface) (eps, slice []string) {
	t.Helper()
	e, err := cs.CoreV1().Endpoints("default").Get(t.Context(), "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range e.Subsets {
		for _, a := range s.Addresses {
			eps = append(eps, a.IP)
		}
		if len(s.Ports) != 1 || s.Ports[0].Port != 6443 {
			t.Errorf("ports %v", s.Ports)
		}
	}
	es, err := cs.DiscoveryV1().EndpointSlices("default").Get(t.Context(), "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ep := range es.Endpoints {
		slice = append(slice, ep.Addresses...)
	}
	return eps, slice
}

func TestEndpointsListLiveServers(t *testing.T) {
	cs := fake.NewClientset()
	ctx := t.Context()
	a, b := reconciler(cs, "a", "192.0.2.1"), reconciler(cs, "b", "192.0.2.2")
	for _, r := range []*Reconciler{a, b} {
		if err := r.renew(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// A server whose lease expired long ago is not listed.
	old := metav1.NewMicroTime(time.Now().Add(-time.Hour))
	_, err := cs.CoordinationV1().Leases(LeaseNamespace).Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: LeaseName("dead"), Namespace: LeaseNamespace,
			Labels: map[string]string{LeaseLabel: "true"}, Annotations: map[string]string{AddressAnnotation: "192.0.2.9"}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("dead"), LeaseDurationSeconds: ptr.To(int32(30)), RenewTime: &old},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.reconcile(ctx, ""); err != nil {
		t.Fatal(err)
	}
	want := []string{"192.0.2.1", "192.0.2.2"}
	if eps, slice := addresses(t, cs); !slices.Equal(eps, want) || !slices.Equal(slice, want) {
		t.Fatalf("endpoints %v, slice %v, want %v", eps, slice, want)
	}
	// b writes the same: no conflicting update.
	if err := b.reconcile(ctx, ""); err != nil {
		t.Fatal(err)
	}
	// a stops: it withdraws itself.
	if err := a.withdraw(ctx); err != nil {
		t.Fatal(err)
	}
	if eps, slice := addresses(t, cs); !slices.Equal(eps, want[1:]) || !slices.Equal(slice, want[1:]) {
		t.Fatalf("after a stopped: endpoints %v, slice %v", eps, slice)
	}
	if _, err := cs.CoordinationV1().Leases(LeaseNamespace).Get(ctx, LeaseName("a"), metav1.GetOptions{}); err == nil {
		t.Fatal("a's lease is still there")
	}
}

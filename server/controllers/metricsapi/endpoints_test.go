package metricsapi

import (
	"log/slog"
	"net"
	"slices"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/kedge/kedge/server/controllers/endpoints"
)

func serverLease(name, ip string, renewed time.Time) *coordinationv1.Lease {
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: endpoints.LeaseName(name), Namespace: endpoints.LeaseNamespace,
			Labels: map[string]string{endpoints.LeaseLabel: "true"}, Annotations: map[string]string{endpoints.AddressAnnotation: ip}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(name), LeaseDurationSeconds: ptr.To(int32(30)), RenewTime: ptr.To(metav1.NewMicroTime(renewed))},
	}
}

func sliceAddresses(t *testing.T, s *discoveryv1.EndpointSlice) []string {
	t.Helper()
	var out []string
	for _, e := range s.Endpoints {
		out = append(out, e.Addresses...)
	}
	return out
}

func TestEndpointsKeepsLiveServers(t *testing.T) {
	client := fake.NewClientset(
		serverLease("b", "10.0.0.2", time.Now()),
		serverLease("c", "10.0.0.3", time.Now().Add(-time.Hour)), // expired
	)
	e := &Endpoints{Client: client, Server: "a", IP: net.ParseIP("10.0.0.1"), Port: 6443, Log: slog.Default()}
	// No Service (not deployed yet, or disabled): nothing to write.
	if err := e.reconcile(t.Context(), true); err != nil {
		t.Fatal(err)
	}
	if _, err := client.DiscoveryV1().EndpointSlices("kube-system").Get(t.Context(), "metrics-server", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("endpointslice without a Service: %v", err)
	}
	if _, err := client.CoreV1().Services("kube-system").Create(t.Context(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "metrics-server", Namespace: "kube-system", UID: "svc-uid"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// This server's lease may not be written yet: it is included anyway.
	if err := e.reconcile(t.Context(), true); err != nil {
		t.Fatal(err)
	}
	s, err := client.DiscoveryV1().EndpointSlices("kube-system").Get(t.Context(), "metrics-server", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if o := s.OwnerReferences; len(o) != 1 || o[0].Kind != "Service" || o[0].UID != "svc-uid" {
		t.Errorf("owner references = %+v, want the Service", o)
	}
	if got := sliceAddresses(t, s); !slices.Equal(got, []string{"10.0.0.1", "10.0.0.2"}) {
		t.Errorf("addresses = %v, want 10.0.0.1, 10.0.0.2", got)
	}
	if s.Labels[discoveryv1.LabelServiceName] != "metrics-server" || len(s.Ports) != 1 || *s.Ports[0].Name != "https" || *s.Ports[0].Port != 6443 {
		t.Errorf("slice = %+v", s)
	}
	if err := e.reconcile(t.Context(), false); err != nil {
		t.Fatal(err)
	}
	s, _ = client.DiscoveryV1().EndpointSlices("kube-system").Get(t.Context(), "metrics-server", metav1.GetOptions{})
	if got := sliceAddresses(t, s); !slices.Equal(got, []string{"10.0.0.2"}) {
		t.Errorf("after withdrawing: addresses = %v, want 10.0.0.2", got)
	}
}

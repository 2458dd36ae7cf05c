package publish

import (
	"net"
	"slices"
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func addresses(s *discoveryv1.EndpointSlice) []string {
	var out []string
	for _, e := range s.Endpoints {
		out = append(out, e.Addresses...)
		if e.Conditions.Ready == nil || !*e.Conditions.Ready {
			out = append(out, "(not ready)")
		}
	}
	return out
}

func TestSlice(t *testing.T) {
	for _, tc := range []struct {
		family string
		want   discoveryv1.AddressType
	}{
		{"192.0.2.1", discoveryv1.AddressTypeIPv4},
		{"2001:db8::1", discoveryv1.AddressTypeIPv6},
	} {
		s := Slice("ns", "svc", []string{"a", "b"}, net.ParseIP(tc.family), "https", 6443)
		if s.AddressType != tc.want {
			t.Errorf("family %s: address type %s, want %s", tc.family, s.AddressType, tc.want)
		}
		if s.Namespace != "ns" || s.Name != "svc" || s.Labels[discoveryv1.LabelServiceName] != "svc" || s.Labels[discoveryv1.LabelManagedBy] != ManagedBy {
			t.Errorf("metadata %+v", s.ObjectMeta)
		}
		if got := addresses(s); !slices.Equal(got, []string{"a", "b"}) {
			t.Errorf("addresses %v", got)
		}
		if len(s.Ports) != 1 || *s.Ports[0].Name != "https" || *s.Ports[0].Port != 6443 || *s.Ports[0].Protocol != "TCP" {
			t.Errorf("ports %+v", s.Ports)
		}
	}
}

func TestWriteSlice(t *testing.T) {
	ctx := t.Context()
	cs := fake.NewClientset()
	v4 := net.ParseIP("192.0.2.1")
	get := func() *discoveryv1.EndpointSlice {
		t.Helper()
		s, err := cs.DiscoveryV1().EndpointSlices("ns").Get(ctx, "svc", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	writes := func() int {
		n := 0
		for _, a := range cs.Actions() {
			if a.GetVerb() == "create" || a.GetVerb() == "update" {
				n++
			}
		}
		return n
	}

	if err := WriteSlice(ctx, cs, Slice("ns", "svc", []string{"192.0.2.1"}, v4, "https", 6443)); err != nil {
		t.Fatal(err)
	}
	if got := addresses(get()); !slices.Equal(got, []string{"192.0.2.1"}) {
		t.Fatalf("created with %v", got)
	}

	// Someone annotates the slice; an equal write changes nothing.
	s := get()
	s.Annotations = map[string]string{"note": "kept"}
	if _, err := cs.DiscoveryV1().EndpointSlices("ns").Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	before := writes()
	if err := WriteSlice(ctx, cs, Slice("ns", "svc", []string{"192.0.2.1"}, v4, "https", 6443)); err != nil {
		t.Fatal(err)
	}
	if writes() != before {
		t.Errorf("an unchanged slice was written again: %v", cs.Actions()[before:])
	}

	// New addresses and an owner: updated, other metadata kept.
	want := Slice("ns", "svc", []string{"192.0.2.1", "192.0.2.2"}, v4, "https", 6443)
	want.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: "svc", UID: "uid"}}
	if err := WriteSlice(ctx, cs, want); err != nil {
		t.Fatal(err)
	}
	got := get()
	if a := addresses(got); !slices.Equal(a, []string{"192.0.2.1", "192.0.2.2"}) {
		t.Errorf("updated to %v", a)
	}
	if got.Annotations["note"] != "kept" {
		t.Errorf("annotations %v, want the other writer's kept", got.Annotations)
	}
	if len(got.OwnerReferences) != 1 || got.OwnerReferences[0].UID != "uid" {
		t.Errorf("owner references %+v", got.OwnerReferences)
	}

	// Only the port changes: updated too.
	if err := WriteSlice(ctx, cs, func() *discoveryv1.EndpointSlice {
		s := Slice("ns", "svc", []string{"192.0.2.1", "192.0.2.2"}, v4, "https", 443)
		s.OwnerReferences = want.OwnerReferences
		return s
	}()); err != nil {
		t.Fatal(err)
	}
	if p := get().Ports; *p[0].Port != 443 {
		t.Errorf("port %d, want 443", *p[0].Port)
	}
}

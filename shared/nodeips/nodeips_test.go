package nodeips

import (
	"errors"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func node(annotations map[string]string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Annotations: annotations}}
}

func TestAddresses(t *testing.T) {
	internal := func(a string) corev1.NodeAddress { return corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: a} }
	external := func(a string) corev1.NodeAddress { return corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: a} }
	cases := []struct {
		name        string
		annotations map[string]string
		want        []corev1.NodeAddress
		wantErr     bool
	}{
		{"internal only", map[string]string{InternalIPAnnotation: "10.0.0.5"}, []corev1.NodeAddress{internal("10.0.0.5")}, false},
		{"empty external", map[string]string{InternalIPAnnotation: "10.0.0.5", ExternalIPAnnotation: ""}, []corev1.NodeAddress{internal("10.0.0.5")}, false},
		{"external list", map[string]string{InternalIPAnnotation: "10.0.0.5", ExternalIPAnnotation: "203.0.113.7, 2001:db8::7"},
			[]corev1.NodeAddress{internal("10.0.0.5"), external("203.0.113.7"), external("2001:db8::7")}, false},
		{"normalized", map[string]string{InternalIPAnnotation: "2001:DB8:0::1"}, []corev1.NodeAddress{internal("2001:db8::1")}, false},
		{"bad external", map[string]string{InternalIPAnnotation: "10.0.0.5", ExternalIPAnnotation: "public"}, nil, true},
		{"bad internal", map[string]string{InternalIPAnnotation: "10.0.0"}, nil, true},
		{"empty internal", map[string]string{InternalIPAnnotation: ""}, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Addresses(node(tc.annotations))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tc.wantErr)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("addresses = %v, want %v", got, tc.want)
			}
		})
	}
	if _, err := Addresses(node(map[string]string{ExternalIPAnnotation: "203.0.113.7"})); !errors.Is(err, ErrNotPublished) {
		t.Fatalf("without %s: err = %v, want ErrNotPublished", InternalIPAnnotation, err)
	}
}

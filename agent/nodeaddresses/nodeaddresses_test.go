package nodeaddresses

import (
	"net"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kedge/kedge/server/kedgecloud"
)

func TestPublished(t *testing.T) {
	plain := (&Publisher{InternalIP: net.ParseIP("192.0.2.5")}).Annotations()
	public := (&Publisher{InternalIP: net.ParseIP("192.0.2.5"),
		ExternalIPs: []net.IP{net.ParseIP("203.0.113.7"), net.ParseIP("2001:db8::7")}}).Annotations()
	if got := *public[kedgecloud.ExternalIPAnnotation]; got != "203.0.113.7,2001:db8::7" {
		t.Fatalf("external annotation = %q", got)
	}
	cases := []struct {
		name        string
		annotations map[string]string
		want        map[string]*string
		published   bool
	}{
		{"none yet", nil, plain, false},
		{"plain", map[string]string{kedgecloud.InternalIPAnnotation: "192.0.2.5", "other": "x"}, plain, true},
		{"stale external", map[string]string{kedgecloud.InternalIPAnnotation: "192.0.2.5", kedgecloud.ExternalIPAnnotation: "203.0.113.7"}, plain, false},
		{"other internal", map[string]string{kedgecloud.InternalIPAnnotation: "192.0.2.6"}, plain, false},
		{"public", map[string]string{kedgecloud.InternalIPAnnotation: "192.0.2.5", kedgecloud.ExternalIPAnnotation: "203.0.113.7,2001:db8::7"}, public, true},
		{"public missing", map[string]string{kedgecloud.InternalIPAnnotation: "192.0.2.5"}, public, false},
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

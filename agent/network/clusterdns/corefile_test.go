package clusterdns

import (
	"net"
	"slices"
	"testing"

	"github.com/kedge/kedge/scripts/testenv"
)

func TestCorefileGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   Inputs
	}{
		{"default", Inputs{NodeIP: net.ParseIP("192.168.1.20"), Port: Port, ClusterDomain: "cluster.local",
			Kubeconfig: "/var/lib/kedge/agent/cred/kube-proxy.kubeconfig", Upstreams: []string{"127.0.0.53:53", "[2001:db8::1]:53"},
			AllowFrom: []string{"10.42.0.0/16", "192.168.1.20/32", "127.0.0.0/8"}}},
		// No upstreams: no forward block (a forward without servers does
		// not load); a trailing dot on the domain and a path with a space.
		{"no-upstreams", Inputs{NodeIP: net.ParseIP("10.0.0.7"), Port: 5353, ClusterDomain: "edge.example.",
			Kubeconfig: "/data dir/kube-proxy.kubeconfig"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testenv.Golden(t, tc.name+".Corefile", []byte(Corefile(tc.in)))
		})
	}
}

func TestUpstreams(t *testing.T) {
	for _, tc := range []struct {
		name, conf string
		want       []string
	}{
		{"systemd-resolved stub", "# managed\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n", []string{"127.0.0.53:53"}},
		{"several, in order", "nameserver 10.0.0.1\nnameserver   192.168.1.1  \nnameserver 2001:db8::53\n",
			[]string{"10.0.0.1:53", "192.168.1.1:53", "[2001:db8::53]:53"}},
		{"scoped ipv6", "nameserver fe80::1%eth0\n", []string{"[fe80::1%eth0]:53"}},
		{"junk skipped", "nameserver\nnameserver resolver.lan\nnameserverx 1.2.3.4\n;nameserver 1.1.1.1\n", nil},
		{"empty", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Upstreams([]byte(tc.conf)); !slices.Equal(got, tc.want) {
				t.Errorf("Upstreams = %q, want %q", got, tc.want)
			}
		})
	}
}

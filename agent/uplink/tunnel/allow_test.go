package tunnel

import (
	"net"
	"strings"
	"testing"
)

func TestAllowCheck(t *testing.T) {
	a := &Allow{NodeIP: net.ParseIP("192.0.2.10"), LocalAddrs: func() ([]net.Addr, error) {
		// The CNI bridge's gateway and flannel's device sit inside the pod CIDR.
		return []net.Addr{&net.IPNet{IP: net.ParseIP("10.42.3.1"), Mask: net.CIDRMask(24, 32)},
			&net.IPNet{IP: net.ParseIP("10.42.3.0"), Mask: net.CIDRMask(32, 32)}}, nil
	}}
	if err := a.Check("tcp", "10.42.3.7:8080"); err == nil {
		t.Fatal("a pod IP was allowed before the pod CIDR is known")
	}
	_, cidr, _ := net.ParseCIDR("10.42.3.0/24")
	a.SetPodCIDRs(cidr, nil)
	for _, tc := range []struct {
		network, address string
		ok               bool
	}{
		{"tcp", "127.0.0.1:10250", true},
		{"tcp", "192.0.2.10:10250", true},
		{"tcp4", "192.0.2.10:10250", true},
		{"tcp", "[::ffff:192.0.2.10]:10250", true},
		{"tcp", "10.42.3.7:8080", true},
		{"tcp", "10.42.3.255:10250", true},
		{"tcp", "127.0.0.1:22", false},     // another port on the host
		{"tcp", "192.0.2.10:10248", false}, // the kubelet's healthz port
		{"tcp", "192.0.2.11:10250", false}, // another node's kubelet
		{"tcp", "10.42.4.7:8080", false},   // another node's pod
		{"tcp", "10.42.3.1:10250", false},  // the host, by its bridge address
		{"tcp", "10.42.3.0:22", false},     // the host, by flannel's address
		{"tcp", "10.43.0.1:443", false},    // a service IP
		{"udp", "10.42.3.7:53", false},     // not TCP
		{"unix", "/run/containerd.sock", false},
		{"tcp", "localhost:10250", false}, // names are not resolved
		{"tcp", "10.42.3.7", false},       // no port
		{"tcp", "10.42.3.7:0", false},
		{"tcp", "[fe80::1%eth0]:10250", false},
	} {
		err := a.Check(tc.network, tc.address)
		if (err == nil) != tc.ok {
			t.Errorf("Check(%s, %s) = %v, want allowed=%v", tc.network, tc.address, err, tc.ok)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "tunnel: ") {
			t.Errorf("Check(%s, %s): error %q lacks context", tc.network, tc.address, err)
		}
	}
	// A custom kubelet port replaces the default.
	b := &Allow{NodeIP: net.ParseIP("192.0.2.10"), KubeletPort: 11250}
	if b.Check("tcp", "192.0.2.10:10250") == nil || b.Check("tcp", "127.0.0.1:11250") != nil {
		t.Error("KubeletPort is not honoured")
	}
}

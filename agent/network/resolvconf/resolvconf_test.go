package resolvconf

import (
	"slices"
	"testing"
)

func TestNameservers(t *testing.T) {
	for _, tc := range []struct {
		name, conf string
		want       []string
		loopback   bool
	}{
		{"systemd-resolved stub", "# managed\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n", []string{"127.0.0.53"}, true},
		{"several, in order", "nameserver 10.0.0.1\nnameserver   192.168.1.1  \nnameserver 2001:db8::53\n",
			[]string{"10.0.0.1", "192.168.1.1", "2001:db8::53"}, false},
		{"loopback and real", "nameserver 127.0.0.1\nnameserver 10.0.0.1\n", []string{"127.0.0.1", "10.0.0.1"}, false},
		{"ipv6 loopback", "nameserver ::1\n", []string{"::1"}, true},
		{"scoped ipv6", "nameserver fe80::1%eth0\n", []string{"fe80::1%eth0"}, false},
		{"junk skipped", "nameserver\nnameserver resolver.lan\nnameserverx 1.2.3.4\n;nameserver 1.1.1.1\n", nil, false},
		{"empty", "", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Nameservers([]byte(tc.conf)); !slices.Equal(got, tc.want) {
				t.Errorf("Nameservers = %q, want %q", got, tc.want)
			}
			if got := LoopbackOnly([]byte(tc.conf)); got != tc.loopback {
				t.Errorf("LoopbackOnly = %v, want %v", got, tc.loopback)
			}
		})
	}
}

func TestForPods(t *testing.T) {
	stub := []byte("nameserver 127.0.0.53\n")
	if got := ForPods("/etc/kedge/resolv.conf", stub, true); got != "/etc/kedge/resolv.conf" {
		t.Errorf("a file the user chose is kept, got %s", got)
	}
	if got := ForPods(Default, []byte("nameserver 10.0.0.1\n"), false); got != Default {
		t.Errorf("a reachable resolver is kept, got %s", got)
	}
	// SystemdResolved may or may not exist on the test machine.
	got := ForPods(Default, stub, false)
	if got != Default && got != SystemdResolved {
		t.Errorf("ForPods(stub) = %s", got)
	}
}

package tunnelwire

import (
	"crypto/tls"
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// TestTuneTCP checks the socket options on a real TCP connection, also
// under a TLS connection, and refuses a connection that is not TCP.
func TestTuneTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	raw, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if err := TuneTCP(tls.Client(raw, &tls.Config{})); err != nil {
		t.Fatalf("TuneTCP under TLS: %v", err)
	}
	sc, err := raw.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct{ level, opt, value int }{
		"SO_KEEPALIVE":     {unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
		"TCP_KEEPIDLE":     {unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, int((DeadAfter / 2).Seconds())},
		"TCP_KEEPINTVL":    {unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, 1},
		"TCP_KEEPCNT":      {unix.IPPROTO_TCP, unix.TCP_KEEPCNT, int((DeadAfter / 2).Seconds())},
		"TCP_USER_TIMEOUT": {unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(DeadAfter.Milliseconds())},
	}
	for name, w := range want {
		var got int
		var gerr error
		if err := sc.Control(func(fd uintptr) { got, gerr = unix.GetsockoptInt(int(fd), w.level, w.opt) }); err != nil || gerr != nil {
			t.Fatalf("%s: %v %v", name, err, gerr)
		}
		if got != w.value {
			t.Errorf("%s = %d, want %d", name, got, w.value)
		}
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if err := TuneTCP(a); err == nil {
		t.Error("TuneTCP accepted a pipe")
	}
}

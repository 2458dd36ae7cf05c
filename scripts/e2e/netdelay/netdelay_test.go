package netdelay

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kedge/kedge/scripts/e2e/hosts"
)

// TestDelaysQueuedPackets: with a host's outgoing packets on eth0 queued
// (iptables NFQUEUE, as the e2e tests do), a TCP connect from the host
// takes at least the delay (its SYN is held); without the rule it is fast.
func TestDelaysQueuedPackets(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces)")
	}
	nw := hosts.NewNetwork(t)
	h := nw.AddHost(t, "delayed")
	l, err := net.Listen("tcp", net.JoinHostPort(nw.Gateway(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	url := "http://" + l.Addr().String() + "/"
	connect := func() time.Duration {
		t.Helper()
		out, err := exec.Command("ip", "netns", "exec", h.NS, "curl", "-s", "-o", "/dev/null", "-w", "%{time_connect}", "--max-time", "5", url).Output()
		if err != nil {
			t.Fatalf("curl: %v (%s)", err, out)
		}
		s, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
		if err != nil {
			t.Fatalf("curl time_connect %q: %v", out, err)
		}
		return time.Duration(s * float64(time.Second))
	}
	if d := connect(); d >= 100*time.Millisecond {
		t.Fatalf("connect took %v before any delay", d)
	}
	const delay = 300 * time.Millisecond
	q, err := Start("/run/netns/"+h.NS, 7, delay)
	if err != nil {
		t.Fatal(err)
	}
	rule := []string{"POSTROUTING", "-o", "eth0", "-j", "NFQUEUE", "--queue-num", "7", "--queue-bypass"}
	if out, err := exec.Command("ip", append([]string{"netns", "exec", h.NS, "iptables", "-t", "mangle", "-A"}, rule...)...).CombinedOutput(); err != nil {
		t.Fatalf("iptables: %v\n%s", err, out)
	}
	for range 3 {
		if d := connect(); d < delay || d > delay+200*time.Millisecond {
			t.Errorf("connect took %v with a %v delay", d, delay)
		} else {
			t.Logf("connect with a %v delay: %v", delay, d)
		}
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.Err(); err != nil {
		t.Fatal(err)
	}
	if d := connect(); d >= 100*time.Millisecond {
		t.Errorf("connect took %v after Close (the rule bypasses an unbound queue)", d)
	}
}

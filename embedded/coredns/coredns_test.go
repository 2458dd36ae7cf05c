package coredns

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"k8s.io/klog/v2"

	"github.com/kedge/kedge/embedded/component"
	"github.com/kedge/kedge/scripts/testenv"
)

// freeDNSPort returns a port free on 127.0.0.1 for both UDP and TCP (a
// DNS server listens on both; a port free for UDP alone may be an outgoing
// TCP connection's ephemeral port on a busy machine).
func freeDNSPort(t *testing.T) int {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err == nil {
			pc.Close()
			return port
		}
	}
	t.Fatal("no port free for both UDP and TCP")
	return 0
}

// upstream answers A queries for name with addr.
func upstream(t *testing.T, name, addr string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		if q.Question[0].Name == name {
			m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5}, A: net.ParseIP(addr)}}
		} else {
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String()
}

func query(addr, name string) ([]string, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	c := &dns.Client{Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	if r.Rcode != dns.RcodeSuccess {
		return out, fmt.Errorf("rcode %s", dns.RcodeToString[r.Rcode])
	}
	return out, nil
}

// TestStartForwardsAndKeepsKlog runs a real CoreDNS with the kubernetes
// plugin (its API never answers, so it starts after its start-up wait) and forward:
// an outside name is answered by the upstream, klog keeps writing to the
// slog logger it had (also during the wait), and after Stop the port is
// free for the next Start.
func TestServerForwardsAndKeepsKlog(t *testing.T) {
	var logs testenv.Output
	klog.SetSlogLogger(slog.New(slog.NewTextHandler(&logs, nil)).With("component", "k8s"))
	t.Cleanup(klog.ClearLogger)

	// An "API server" that accepts connections and never answers: the
	// plugin's first connection comes during its start-up wait.
	api, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://`+api.Addr().String()+`", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freeDNSPort(t)
	up := upstream(t, "shop.example.test.", "192.0.2.80")
	corefile := fmt.Sprintf(".:%d {\n bind 127.0.0.1\n errors\n kubernetes cluster.local in-addr.arpa ip6.arpa {\n  kubeconfig %s\n  startup_timeout 2s\n  fallthrough in-addr.arpa ip6.arpa\n }\n forward . %s\n cache 30\n loadbalance\n}\n", port, kubeconfig, up)

	// klog lines written while the plugin waits for the API.
	during := make(chan struct{})
	go func() {
		defer close(during)
		conn, err := api.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		klog.Info("probe during start")
	}()
	dns, err := component.Start(t.Context(), &Server{Corefile: corefile})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dns.Stop() })
	<-during
	klog.Info("probe after start")
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if got, err := query(addr, "shop.example.test."); err != nil || len(got) != 1 || got[0] != "192.0.2.80" {
		t.Errorf("shop.example.test: %v %v, want the upstream's 192.0.2.80", got, err)
	}
	if _, err := query(addr, "nothing.default.svc.cluster.local."); err == nil || !strings.Contains(err.Error(), "NXDOMAIN") && !strings.Contains(err.Error(), "SERVFAIL") {
		t.Errorf("a cluster name with no API: err %v, want NXDOMAIN or SERVFAIL", err)
	}
	out := logs.String()
	for _, probe := range []string{"probe during start", "probe after start"} {
		if !strings.Contains(out, `msg="`+probe+`" component=k8s`) {
			t.Errorf("klog's %q did not reach kedge's logger:\n%s", probe, out)
		}
	}
	if err := dns.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	again, err := component.Start(t.Context(), &Server{Corefile: corefile})
	if err != nil {
		t.Fatalf("start again on the same port: %v", err)
	}
	if err := again.Stop(); err != nil {
		t.Fatalf("stop again: %v", err)
	}
	if _, err := component.Start(t.Context(), &Server{Corefile: "not a corefile {"}); err == nil {
		t.Error("a bad Corefile started")
	}
}

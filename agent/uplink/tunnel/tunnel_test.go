package tunnel

import (
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/component-base/metrics/legacyregistry"

	"github.com/kedge/kedge/scripts/testenv"
	"github.com/kedge/kedge/shared/tunnelwire"
)

func edgeNode() *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "edge"},
		Spec:   corev1.NodeSpec{PodCIDR: "127.77.0.0/24", PodCIDRs: []string{"127.77.0.0/24"}},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}}}
}

// TestConnectRouting: the egress proxy dials a node's IP and pod CIDR
// through the node's tunnel while it has one and directly otherwise; the
// agent dials only its kubelet port and its pods, and a refused dial fails
// only that connection.
func TestConnectRouting(t *testing.T) {
	c := newCluster(t, edgeNode())
	kubelet := echo(t, "127.0.0.1")
	other := echo(t, "127.0.0.1") // the node's IP, not the kubelet port
	pod := echo(t, "127.77.0.5")  // inside the node's pod CIDR
	stray := echo(t, "127.0.0.3") // no node's
	api := func(target string) (int, bool) {
		return c.connect(t, target)
	}

	if code, ok := api(other); code != http.StatusOK || !ok {
		t.Fatalf("without a tunnel, a direct dial to %s: status %d, echoed %v", other, code, ok)
	}
	allow := &Allow{NodeIP: net.ParseIP("127.0.0.1"), KubeletPort: portOf(t, kubelet),
		LocalAddrs: func() ([]net.Addr, error) { return nil, nil }}
	_, cidr, _ := net.ParseCIDR("127.77.0.0/24")
	allow.SetPodCIDRs(cidr)
	stop := c.startAgent(t, "edge", allow)
	c.waitSessions(t, "edge")

	for _, target := range []string{kubelet, pod, stray} {
		if code, ok := api(target); code != http.StatusOK || !ok {
			t.Errorf("CONNECT %s: status %d, echoed %v; logs:\n%s", target, code, ok, c.logs)
		}
	}
	// Reachable directly, but the node has a tunnel, so it goes through it
	// and the agent refuses it.
	if _, ok := api(other); ok {
		t.Errorf("CONNECT %s (the node's IP, not its kubelet port) went through", other)
	}
	if code, ok := api(kubelet); code != http.StatusOK || !ok {
		t.Errorf("the kubelet after a refused dial: status %d, echoed %v", code, ok)
	}
	if n := count(c.logs, "tunnel session started"); n != 1 {
		t.Errorf("%d sessions started, want 1 (a refusal must not end the session); logs:\n%s", n, c.logs)
	}
	// Only this user may open the proxy's socket.
	if fi, err := os.Stat(c.proxy); err != nil {
		t.Error(err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Errorf("egress socket %s has mode %v, want 0600", c.proxy, fi.Mode().Perm())
	}

	// Once the tunnel is gone (and not back within the grace period), the
	// proxy dials directly again.
	stop()
	c.waitSessions(t, "")
	if code, ok := api(other); code != http.StatusOK || !ok {
		t.Fatalf("after the tunnel ended, a direct dial to %s: status %d, echoed %v", other, code, ok)
	}
}

// TestEndpointRefusesNonNodes: the websocket endpoint answers 401 without a
// verified client certificate and 403 for one that is not a node's, before
// any upgrade.
func TestEndpointRefusesNonNodes(t *testing.T) {
	c := newCluster(t)
	other := newCluster(t) // another cluster's CA
	caPEM, _ := os.ReadFile(c.files.ServerCA)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	get := func(certFile, keyFile string, upgrade bool) int {
		cfg := &tls.Config{RootCAs: roots}
		if certFile != "" {
			cert, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 5 * time.Second}
		defer hc.CloseIdleConnections()
		req, _ := http.NewRequest(http.MethodGet, c.public.URL+"/v1-kedge/connect", nil)
		if upgrade {
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "websocket")
			req.Header.Set("Sec-WebSocket-Version", "13")
			req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	admin, adminKey := c.clientCert(t, "system:admin", "system:masters")
	noGroup, noGroupKey := c.clientCert(t, "system:node:edge")
	foreign, foreignKey := other.clientCert(t, "system:node:edge", "system:nodes")
	node, nodeKey := c.clientCert(t, "system:node:edge", "system:nodes")
	for _, tc := range []struct {
		name, cert, key string
		want            int
	}{
		{"no certificate", "", "", http.StatusUnauthorized},
		{"another CA", foreign, foreignKey, http.StatusUnauthorized},
		{"admin", admin, adminKey, http.StatusForbidden},
		{"node name without the nodes group", noGroup, noGroupKey, http.StatusForbidden},
		{"the apiserver", c.files.KubeletClientCert, c.files.KubeletKey, http.StatusForbidden},
	} {
		if got := get(tc.cert, tc.key, true); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
	if got := get(node, nodeKey, false); got != http.StatusBadRequest {
		t.Errorf("a node without a websocket upgrade: status %d, want 400", got)
	}
	if s := c.srv.Sessions(); len(s) != 0 {
		t.Errorf("sessions after refusals: %v", s)
	}
}

// TestNewSessionReplacesOld: a node's second session closes its first.
func TestNewSessionReplacesOld(t *testing.T) {
	c := newCluster(t, edgeNode())
	certFile, keyFile := c.clientCert(t, "system:node:edge", "system:nodes")
	dial := func() *websocket.Conn {
		ws, code := c.dialEndpoint(t, certFile, keyFile)
		if ws == nil {
			t.Fatalf("open a session: HTTP %d", code)
		}
		return ws
	}
	first := dial()
	c.waitSessions(t, "edge")
	_ = dial()
	_ = first.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := first.ReadMessage(); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("the first session was not closed by the second")
			}
			break
		}
	}
	c.waitSessions(t, "edge")
	if n := count(c.logs, "a new tunnel session replaces the old one"); n != 1 {
		t.Errorf("replacements logged: %d, want 1; logs:\n%s", n, c.logs)
	}
}

// TestServerStopEndsSessions: stopping the tunnel server closes the
// hijacked session connections (http.Server.Shutdown would not) and
// refuses new ones.
func TestServerStopEndsSessions(t *testing.T) {
	c := newCluster(t, edgeNode())
	c.startAgent(t, "edge", &Allow{})
	c.waitSessions(t, "edge")
	dials := c.dials.Load()
	c.stop()
	c.waitSessions(t, "")
	// The agent saw its session end: it tries again.
	c.waitDial(t, dials, 5*time.Second)
	// The endpoint is still served (by the test server) but refuses.
	certFile, keyFile := c.clientCert(t, "system:node:edge", "system:nodes")
	if _, code := c.dialEndpoint(t, certFile, keyFile); code != http.StatusServiceUnavailable {
		t.Fatalf("a new session after the stop: HTTP %d, want 503", code)
	}
	if s := c.srv.Sessions(); len(s) != 0 {
		t.Fatalf("sessions after the stop: %v", s)
	}
}

// TestClientReadyWithoutServer: an unreachable server does not hold up the
// agent, and the client stops at once when cancelled.
func TestClientReadyWithoutServer(t *testing.T) {
	// Nothing serves there: every connection is closed at once.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var attempts atomic.Int64
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			attempts.Add(1)
			conn.Close()
		}
	}()
	addr := l.Addr().String()
	c := newCluster(t)
	certFile, keyFile := c.clientCert(t, "system:node:edge", "system:nodes")
	client := &Client{Server: "https://" + addr, CertFile: certFile, KeyFile: keyFile, CAFile: c.files.ServerCA,
		Allow: &Allow{}, Log: slog.New(slog.NewTextHandler(c.logs, nil))}
	r := testenv.Start(t, client.Run)
	r.WaitReady(time.Second) // at once
	testenv.WaitUntil(t, 5*time.Second, "a second attempt to open the tunnel after a failed one",
		func() bool { return attempts.Load() >= 2 })
	stopWithin(t, r, 2*time.Second)
}

// TestDeadLinkReconnects: when the link goes silent (a relay that stops
// forwarding, as a dead radio link does), the agent notices within
// DeadAfter plus a ping, reconnects, and the new session replaces the one
// the server still holds.
func TestDeadLinkReconnects(t *testing.T) {
	c := newCluster(t, edgeNode())
	relay := newRelay(t, c.public.Listener.Addr().String())
	certFile, keyFile := c.clientCert(t, "system:node:edge", "system:nodes")
	client := &Client{Server: "https://" + relay.addr, CertFile: certFile, KeyFile: keyFile, CAFile: c.files.ServerCA,
		Allow: &Allow{}, Log: slog.New(slog.NewTextHandler(c.logs, nil))}
	testenv.Start(t, client.Run)
	c.waitSessions(t, "edge")
	lost, started := metric(t, "kedge_agent_tunnel_sessions_lost_total"), metric(t, "kedge_tunnel_sessions_started_total", "edge")
	ended := metric(t, "kedge_tunnel_sessions_ended_total", "edge")
	dials := c.dials.Load()
	relay.freeze()
	cut := time.Now()
	c.waitDial(t, dials, tunnelwire.DeadAfter+2*tunnelwire.PingInterval+maxBackoff+2*time.Second)
	t.Logf("new session attempt %.1f s after the link went silent", time.Since(cut).Seconds())
	if count(c.logs, "tunnel link is dead") != 1 {
		t.Errorf("the agent did not report the dead link; logs:\n%s", c.logs)
	}
	if got := metric(t, "kedge_agent_tunnel_sessions_lost_total"); got != lost+1 {
		t.Errorf("kedge_agent_tunnel_sessions_lost_total = %v after one dead link, want %v", got, lost+1)
	}
	c.waitSessions(t, "edge")
	testenv.WaitUntil(t, 2*tunnelwire.DeadAfter, "the server to count the dead session as ended", func() bool {
		return metric(t, "kedge_tunnel_sessions_ended_total", "edge") == ended+1
	})
	if got := metric(t, "kedge_tunnel_sessions_started_total", "edge"); got != started+1 {
		t.Errorf("kedge_tunnel_sessions_started_total{node=edge} = %v after a reconnect, want %v", got, started+1)
	}
}

// metric is the value of the counter name in the process's Kubernetes
// metrics registry (0 before its first increment), of the series whose
// node label is node when one is given.
func metric(t *testing.T, name string, node ...string) float64 {
	t.Helper()
	families, err := legacyregistry.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if len(node) == 0 || slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool {
				return l.GetName() == "node" && l.GetValue() == node[0]
			}) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// relay forwards TCP connections to a target until frozen, after which the
// connections it has stay open but carry nothing, not even a close (new
// ones work).
type relay struct {
	addr   string
	mu     sync.Mutex
	frozen []*atomic.Bool
}

func newRelay(t *testing.T, target string) *relay {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	r := &relay{addr: l.Addr().String()}
	var conns sync.WaitGroup
	t.Cleanup(conns.Wait)
	go func() {
		for {
			down, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				down.Close()
				continue
			}
			var frozen atomic.Bool
			r.mu.Lock()
			r.frozen = append(r.frozen, &frozen)
			r.mu.Unlock()
			pump := func(dst, src net.Conn) {
				defer conns.Done()
				// A dead link does not carry closes either; cleanup does.
				defer func() {
					if !frozen.Load() {
						dst.Close()
						src.Close()
					}
				}()
				buf := make([]byte, 32<<10)
				for {
					n, err := src.Read(buf)
					if n > 0 && !frozen.Load() {
						if _, err := dst.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}
			conns.Add(2)
			go pump(up, down)
			go pump(down, up)
			t.Cleanup(func() { down.Close(); up.Close() })
		}
	}()
	return r
}

// freeze silences every connection made so far.
func (r *relay) freeze() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.frozen {
		f.Store(true)
	}
}

// TestSetKeepsATunnelToEachServer: the Set opens a session to --server,
// then to every server it is given, closes the session of a server no
// longer listed while the others stay up (no new session), and closes all
// of them when stopped.
func TestSetKeepsATunnelToEachServer(t *testing.T) {
	a := newCluster(t, edgeNode())
	b := a.sibling(t, edgeNode())
	certFile, keyFile := a.clientCert(t, "system:node:edge", "system:nodes")
	logs := &testenv.Output{}
	set := &Set{Server: a.public.URL, CertFile: certFile, KeyFile: keyFile, CAFile: a.files.ServerCA,
		Allow: &Allow{}, Log: slog.New(slog.NewTextHandler(logs, nil))}
	r := testenv.Start(t, set.Run)
	r.WaitReady(time.Second) // at once
	a.waitSessions(t, "edge")
	b.waitSessions(t, "")

	addr := func(c *cluster) string { return c.public.Listener.Addr().String() }
	set.SetServers([]string{addr(b), addr(a), addr(b)})
	a.waitSessions(t, "edge")
	b.waitSessions(t, "edge")
	set.SetServers(nil) // ignored: the list stays
	set.SetServers([]string{addr(b)})
	a.waitSessions(t, "")
	b.waitSessions(t, "edge")
	if n := count(a.logs, "tunnel session started"); n != 1 {
		t.Errorf("server a saw %d sessions, want 1; logs:\n%s", n, a.logs)
	}
	if n := count(b.logs, "tunnel session started"); n != 1 {
		t.Errorf("server b saw %d sessions, want 1 (its session must outlive the change); logs:\n%s", n, b.logs)
	}
	if n := count(logs, "closing the tunnel to a server no longer listed"); n != 1 {
		t.Errorf("closings logged: %d, want 1; logs:\n%s", n, logs)
	}

	stopWithin(t, r, 5*time.Second)
	b.waitSessions(t, "")
}

// stopWithin stops r and fails the test unless Run returned nil within limit.
func stopWithin(t *testing.T, r *testenv.Running, limit time.Duration) {
	t.Helper()
	start := time.Now()
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > limit {
		t.Fatalf("Run returned %s after cancel, want within %s", took, limit)
	}
}

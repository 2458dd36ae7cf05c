package lb

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// backend is a real TLS server standing in for a kedge server: /readyz
// answers 200 while ready, /name answers its name, and /stream answers its
// name and then holds the connection open like a watch.
type backend struct {
	name  string
	srv   *httptest.Server
	ready atomic.Bool
	quit  chan struct{}
	link  *link // if set, clients reach the server through it
}

func newBackend(t *testing.T, name string) *backend {
	b := &backend{name: name, quit: make(chan struct{})}
	b.ready.Store(true)
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !b.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("/name", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, name) })
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, name+"\n")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-b.quit:
		}
	})
	b.srv = httptest.NewTLSServer(mux)
	t.Cleanup(func() {
		close(b.quit)
		b.srv.Close()
	})
	return b
}

func (b *backend) addr() string {
	if b.link != nil {
		return b.link.l.Addr().String()
	}
	return b.srv.Listener.Addr().String()
}
func (b *backend) url() string { return "https://" + b.addr() }

// kill makes the server die: no new connections, existing ones closed.
func (b *backend) kill() {
	b.srv.Listener.Close()
	b.srv.CloseClientConnections()
}

// env is a balancer in front of backends, on a free loopback port, with a
// client that talks TLS through it as the kubelet would.
type env struct {
	t      *testing.T
	dir    string
	caFile string
	ca     *x509.CertPool
}

func newEnv(t *testing.T, any *backend) *env {
	dir := t.TempDir()
	caFile := filepath.Join(dir, "server-ca.crt")
	// Every httptest TLS server has the same certificate (for 127.0.0.1).
	cert := any.srv.Certificate()
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &env{t: t, dir: dir, caFile: caFile, ca: pool}
}

func (e *env) balancer(server string) *Balancer {
	return &Balancer{
		Listen: fmt.Sprintf("127.0.0.1:%d", freePort(e.t)), Server: server, CAFile: e.caFile,
		StateFile: filepath.Join(e.dir, "lb-servers.json"), Log: testLogger(e.t),
	}
}

// running is a started balancer.
type running struct {
	ready chan struct{}
	stop  func()
}

func (e *env) start(b *Balancer) *running {
	t := e.t
	ctx, cancel := context.WithCancel(t.Context())
	r := &running{ready: make(chan struct{})}
	var once sync.Once
	errc := make(chan error, 1)
	go func() { errc <- b.Run(ctx, func() { once.Do(func() { close(r.ready) }) }) }()
	var stopOnce sync.Once
	r.stop = func() {
		stopOnce.Do(func() {
			cancel()
			select {
			case err := <-errc:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("the balancer did not stop within 10 s")
			}
		})
	}
	t.Cleanup(r.stop)
	return r
}

func (e *env) waitReady(r *running, within time.Duration) {
	e.t.Helper()
	select {
	case <-r.ready:
	case <-time.After(within):
		e.t.Fatalf("not ready within %s", within)
	}
}

// get fetches path through the balancer on a new connection and returns
// the body ("" on any error).
func (e *env) get(b *Balancer, path string) string {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: e.ca}, DisableKeepAlives: true,
	}}
	resp, err := c.Get("https://" + b.Listen + path)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// waitServedBy polls until a request through the balancer is answered by
// name and returns how long that took.
func (e *env) waitServedBy(b *Balancer, name string, within time.Duration) time.Duration {
	e.t.Helper()
	start := time.Now()
	deadline := start.Add(within)
	for {
		got := e.get(b, "/name")
		if got == name {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("not served by %s within %s (last answer %q)", name, within, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPicksAHealthyServerAndSticksToIt(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	a.ready.Store(false)
	e := newEnv(t, a)
	// b is known from an earlier run; --server is a, which is not ready.
	if err := saveServers(filepath.Join(e.dir, "lb-servers.json"), []string{a.addr(), b.addr()}); err != nil {
		t.Fatal(err)
	}
	lb := e.balancer(a.url())
	r := e.start(lb)
	e.waitReady(r, 5*time.Second)
	e.waitServedBy(lb, "b", 5*time.Second)
	// a recovers: the balancer stays with b.
	a.ready.Store(true)
	deadline := time.Now().Add(4 * DefaultInterval)
	for time.Now().Before(deadline) {
		if got := e.get(lb, "/name"); got != "b" {
			t.Fatalf("answered by %q after a recovered, want b (sticky)", got)
		}
	}
}

// twoServers starts a balancer in front of two ready servers (a is
// --server, b is learned) and returns the active one first.
// With linked, clients reach them through links that can freeze.
func twoServers(t *testing.T, linked bool) (*env, *Balancer, *backend, *backend) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	if linked {
		a.link, b.link = newLink(t, a.srv.Listener.Addr().String()), newLink(t, b.srv.Listener.Addr().String())
	}
	e := newEnv(t, a)
	if err := saveServers(filepath.Join(e.dir, "lb-servers.json"), []string{b.addr()}); err != nil {
		t.Fatal(err)
	}
	lb := e.balancer(a.url())
	e.waitReady(e.start(lb), 5*time.Second)
	waitFile(t, lb.StateFile, a.addr(), b.addr())
	active, other := a, b
	if e.get(lb, "/name") == "b" {
		active, other = b, a
	}
	// Meanwhile both servers were checked (healthy) a few times.
	deadline := time.Now().Add(4 * DefaultInterval)
	for time.Now().Before(deadline) {
		if got := e.get(lb, "/name"); got != active.name {
			t.Fatalf("answered by %q, then by %q: not sticky", active.name, got)
		}
	}
	return e, lb, active, other
}

func TestFailsOverWhenTheServerDies(t *testing.T) {
	e, lb, active, other := twoServers(t, false)
	active.kill()
	took := e.waitServedBy(lb, other.name, 5*time.Second)
	t.Logf("failover after the server died: %s", took.Round(time.Millisecond))
	if took > 2*time.Second {
		t.Errorf("failover took %s, want under 2 s", took)
	}
}

// TestFailsOverWhenTheServerHangs: the active server's link stops passing
// data (a hung server, or a partition) while its connections stay open, so
// only the health check's timeout notices.
func TestFailsOverWhenTheServerHangs(t *testing.T) {
	e, lb, active, other := twoServers(t, true)
	active.link.frozen.Store(true)
	took := e.waitServedBy(lb, other.name, 5*time.Second)
	t.Logf("failover after the server hung: %s (check timeout %s, interval %s)", took.Round(time.Millisecond), DefaultTimeout, DefaultInterval)
	if took > 2*time.Second {
		t.Errorf("failover took %s, want under 2 s", took)
	}
}

func TestClosesConnectionsToAFailedServer(t *testing.T) {
	e, lb, active, other := twoServers(t, false)
	// A long-lived request (like a watch) through the balancer.
	conn, err := tls.Dial("tcp", lb.Listen, &tls.Config{RootCAs: e.ca, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 512)
	n, err := conn.Read(head)
	if err != nil || !strings.Contains(string(head[:n]), "200 OK") {
		t.Fatalf("stream: %q %v", head[:n], err)
	}
	// The active server stops being ready but keeps its connections: the
	// balancer must close the stream so that the client reconnects.
	active.ready.Store(false)
	start := time.Now()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, err = conn.Read(head); err != nil {
			break
		}
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the connection to the failed server is still open after 5 s")
	}
	t.Logf("connection to the failed server closed after %s (%v)", time.Since(start).Round(time.Millisecond), err)
	e.waitServedBy(lb, other.name, 2*time.Second)
}

func TestStartsWhileEveryServerIsDownWithAStoredList(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	a.ready.Store(false)
	b.ready.Store(false)
	e := newEnv(t, a)

	// No stored list: not ready while no server is healthy.
	lb := e.balancer(a.url())
	r := e.start(lb)
	select {
	case <-r.ready:
		t.Fatal("ready with no healthy server and no stored list")
	case <-time.After(3 * DefaultInterval):
	}
	if _, err := os.Stat(lb.StateFile); !os.IsNotExist(err) {
		t.Fatalf("the list was stored before any server answered: %v", err)
	}
	r.stop()

	// A stored list: ready at once, and serving once b comes back.
	if err := saveServers(lb.StateFile, []string{a.addr(), b.addr()}); err != nil {
		t.Fatal(err)
	}
	lb = e.balancer(a.url())
	e.waitReady(e.start(lb), 2*time.Second)
	if got := e.get(lb, "/name"); got != "a" {
		// With no healthy server connections still go to the first one
		// that accepts them.
		t.Fatalf("answered by %q, want a (first reachable)", got)
	}
	a.kill()
	b.ready.Store(true)
	e.waitServedBy(lb, "b", 3*time.Second)
}

func TestRefusesBadInput(t *testing.T) {
	a := newBackend(t, "a")
	e := newEnv(t, a)
	cases := []struct {
		name   string
		mutate func(*Balancer)
		want   string
	}{
		{"not https", func(b *Balancer) { b.Server = "http://" + a.addr() }, "not an https:// URL"},
		{"no CA", func(b *Balancer) { b.CAFile = filepath.Join(e.dir, "missing.crt") }, "cluster CA"},
		{"port taken", func(b *Balancer) { b.Listen = a.addr() }, "address already in use"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := e.balancer(a.url())
			tc.mutate(b)
			err := b.Run(t.Context(), func() { t.Error("ready on bad input") })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// waitFile polls until the stored list is exactly want.
func waitFile(t *testing.T, path string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, _, err := loadServers(path)
		if err == nil && slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stored servers = %v (%v), want %v", got, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// link is a TCP forwarder that can freeze: it then drops all data in both
// directions but keeps the connections open, like a hung peer.
type link struct {
	l      net.Listener
	frozen atomic.Bool
}

func newLink(t *testing.T, target string) *link {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	k := &link{l: l}
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	pipe := func(dst, src net.Conn) {
		defer wg.Done()
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 && !k.frozen.Load() {
				dst.Write(buf[:n])
			}
			if err != nil {
				if !k.frozen.Load() {
					dst.Close()
				}
				return
			}
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, s)
			mu.Unlock()
			wg.Add(2)
			go pipe(s, c)
			go pipe(c, s)
		}
	}()
	return k
}

func TestStoredServers(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "lb-servers.json")
	if got, ok, err := loadServers(path); got != nil || ok || err != nil {
		t.Fatalf("missing file: %v %v %v", got, ok, err)
	}
	want := []string{"192.0.2.1:6443", "[2001:db8::1]:6443"}
	if err := saveServers(path, want); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("stored file: %v %v", st, err)
	}
	if got, ok, err := loadServers(path); !slices.Equal(got, want) || !ok || err != nil {
		t.Fatalf("reloaded %v %v %v, want %v", got, ok, err, want)
	}
	os.WriteFile(path, []byte(`{"servers": ["192.0.2.1:6443", "no-port"]}`), 0o600)
	if got, _, err := loadServers(path); !slices.Equal(got, want[:1]) || err != nil {
		t.Fatalf("entries without a port must be dropped: %v %v", got, err)
	}
	os.WriteFile(path, []byte("{torn"), 0o600)
	if _, _, err := loadServers(path); err == nil {
		t.Fatal("a torn file must be an error (the balancer logs it and goes on with --server)")
	}
}

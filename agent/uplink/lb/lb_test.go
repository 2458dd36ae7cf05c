package lb

import (
	"crypto/tls"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

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

// TestRefusesAServerWithAForeignCertificate: a server whose certificate
// does not chain to the pinned CA is never healthy, even as --server.
func TestRefusesAServerWithAForeignCertificate(t *testing.T) {
	good := newBackend(t, "good")
	e := newEnv(t, good)
	foreign := newForeignBackend(t, "foreign")
	if err := saveServers(filepath.Join(e.dir, "lb-servers.json"), []string{good.addr()}); err != nil {
		t.Fatal(err)
	}
	lb := e.balancer(foreign.url())
	e.waitReady(e.start(lb), 5*time.Second)
	e.waitServedBy(lb, "good", 5*time.Second)
	deadline := time.Now().Add(3 * DefaultInterval)
	for time.Now().Before(deadline) {
		if got := e.get(lb, "/name"); got != "good" {
			t.Fatalf("answered by %q, want good", got)
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
	for _, s := range []*backend{a, b} {
		e.waitHealthy(s, 5*time.Second)
	}
	waitFile(t, lb.StateFile, b.addr()) // --server is not stored: it was not learned
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
	case <-r.Ready():
		t.Fatal("ready with no healthy server and no stored list")
	case <-time.After(3 * DefaultInterval):
	}
	if _, err := os.Stat(lb.StateFile); !os.IsNotExist(err) {
		t.Fatalf("the list was stored before any server answered: %v", err)
	}
	if err := r.Stop(); err != nil {
		t.Errorf("Run: %v", err)
	}

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

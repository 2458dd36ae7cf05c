package lb

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"testing"
	"time"
)

// newTestPool is a pool whose health checks are driven by the test.
func newTestPool(t *testing.T, fallback string) (*pool, map[string]bool) {
	checking := map[string]bool{}
	p := newPool(fallback)
	p.log = slog.New(slog.DiscardHandler)
	p.startCheck = func(addr string) func() {
		checking[addr] = true
		return func() { delete(checking, addr) }
	}
	t.Cleanup(p.stop)
	return p, checking
}

// conn returns a tracked connection pair to addr and reports whether it
// was accepted; closed reports whether the pool closed it.
func conn(t *testing.T, p *pool, addr string, gen uint64) (tracked bool, closed func() bool) {
	client, other := net.Pipe()
	t.Cleanup(func() { other.Close() })
	server, _ := net.Pipe()
	c := &pair{client: client, server: server, addr: addr}
	tracked = p.track(c, gen)
	return tracked, func() bool {
		// An open end times out, a closed one says so.
		client.SetWriteDeadline(time.Now().Add(-time.Second))
		_, err := client.Write([]byte{0})
		return errors.Is(err, io.ErrClosedPipe)
	}
}

func TestPoolChoosesAndSwitches(t *testing.T) {
	down := errors.New("down")
	p, checking := newTestPool(t, "a:1")
	p.setServers([]string{"c:1", "b:1", "a:1", "b:1"})
	if got, want := p.servers(), []string{"a:1", "b:1", "c:1"}; !slices.Equal(got, want) {
		t.Fatalf("servers = %v, want %v (--server first, then sorted, no duplicates)", got, want)
	}
	if len(checking) != 3 {
		t.Fatalf("checking %v, want all three", checking)
	}
	if got := p.activeServer(); got != "a:1" {
		t.Fatalf("before any check the active server is %q, want --server", got)
	}

	// b answers first: it becomes active, and stays when a answers too.
	p.report("b:1", nil)
	p.report("a:1", nil)
	if got := p.activeServer(); got != "b:1" {
		t.Fatalf("active = %q, want b:1", got)
	}
	if got, _ := p.candidates(); !slices.Equal(got, []string{"b:1", "a:1", "c:1"}) {
		t.Fatalf("candidates = %v, want active, healthy, rest", got)
	}
	_, gen := p.candidates()
	okB, closedB := conn(t, p, "b:1", gen)
	okA, closedA := conn(t, p, "a:1", gen)
	if !okB || !okA {
		t.Fatal("connections chosen in the current generation must be tracked")
	}

	// b fails: switch to a, close b's connections, keep a's.
	p.report("b:1", down)
	if got := p.activeServer(); got != "a:1" {
		t.Fatalf("after b failed active = %q, want a:1", got)
	}
	if !closedB() || closedA() {
		t.Fatalf("closed: b %v (want true), a %v (want false)", closedB(), closedA())
	}
	// A connection to b chosen before the switch is refused.
	if ok, _ := conn(t, p, "b:1", gen); ok {
		t.Fatal("a connection to the failed server chosen before the switch was tracked")
	}

	// Every server down: a stays active and its connections stay open.
	p.report("a:1", down)
	p.report("c:1", down)
	if got := p.activeServer(); got != "a:1" || closedA() {
		t.Fatalf("with no healthy server active = %q, a's connection closed %v; want a:1 kept open", got, closedA())
	}

	// c recovers: it becomes active and a's connections are closed.
	p.report("c:1", nil)
	if got := p.activeServer(); got != "c:1" || !closedA() {
		t.Fatalf("active = %q, a closed %v; want c:1 and a's connections closed", got, closedA())
	}
	// The EndpointSlices list only b: c is dropped (its connections
	// closed), a stays (it is --server).
	_, gen = p.candidates()
	okC, closedC := conn(t, p, "c:1", gen)
	p.setServers([]string{"b:1"})
	if got := p.servers(); !slices.Equal(got, []string{"a:1", "b:1"}) {
		t.Fatalf("servers = %v, want a:1 b:1", got)
	}
	if checking["c:1"] || !checking["a:1"] || !checking["b:1"] {
		t.Fatalf("checking %v after c was removed", checking)
	}
	if !okC || !closedC() {
		t.Fatal("the connection to the removed active server must be closed")
	}
	if got := p.activeServer(); got != "a:1" {
		t.Fatalf("active after its removal = %q, want the first server", got)
	}
	// A connection to a server that is not active (a fallback dial) is
	// closed when that server is removed too.
	_, gen = p.candidates()
	okB, closedB = conn(t, p, "b:1", gen)
	p.setServers(nil)
	if !okB || !closedB() || checking["b:1"] {
		t.Fatalf("b removed: tracked %v, closed %v, checking %v", okB, closedB(), checking)
	}

	p.stop()
	if len(checking) != 0 {
		t.Fatalf("still checking %v after stop", checking)
	}
	if ok, _ := conn(t, p, "a:1", gen+10); ok {
		t.Fatal("a stopped pool tracked a connection")
	}
}

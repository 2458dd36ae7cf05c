package lb

import (
	"log/slog"
	"net"
	"slices"
	"sync"
)

// pool is the balancer's state: the known servers in preference order, their
// health, the active server and the proxied connections. All methods are
// safe for concurrent use.
type pool struct {
	log *slog.Logger
	// onChange is called (without the lock held) after the server list
	// or the learned servers changed.
	onChange func()
	// onHealthy is called (without the lock held) each time a server is
	// seen healthy.
	onHealthy func()
	// startCheck starts health checking addr and returns its stop function.
	startCheck func(addr string) (stop func())

	setMu sync.Mutex // serialises setServers

	mu       sync.Mutex
	fallback string // the --server address, always first and never removed
	order    []string
	learned  []string // as last given to setServers, sorted
	health   map[string]*state
	active   string
	gen      uint64 // incremented on every switch of the active server
	conns    map[*pair]struct{}
	stopping bool
}

type state struct {
	healthy bool
	checked bool
	stop    func()
}

// pair is one proxied connection: the client's and the server's side.
type pair struct {
	client, server net.Conn
	addr           string
}

func (c *pair) close() {
	c.client.Close()
	c.server.Close()
}

func newPool(fallback string) *pool {
	return &pool{fallback: fallback, health: map[string]*state{}, conns: map[*pair]struct{}{}}
}

// setServers replaces the learned servers with learned (the fallback stays
// first), starts checking new ones and stops checking removed ones.
// Connections to a removed server are closed.
func (p *pool) setServers(learned []string) {
	p.setMu.Lock()
	defer p.setMu.Unlock()
	want := []string{p.fallback}
	sorted := slices.Clone(learned)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	for _, a := range sorted {
		if a != p.fallback {
			want = append(want, a)
		}
	}
	p.mu.Lock()
	if p.stopping {
		p.mu.Unlock()
		return
	}
	learnedChanged := !slices.Equal(p.learned, sorted)
	p.learned = sorted
	if slices.Equal(want, p.order) {
		p.mu.Unlock()
		if learnedChanged && p.onChange != nil {
			p.onChange()
		}
		return
	}
	var stops []func()
	for _, a := range p.order {
		if !slices.Contains(want, a) {
			if stop := p.health[a].stop; stop != nil {
				stops = append(stops, stop)
			}
			delete(p.health, a)
		}
	}
	var added []string
	for _, a := range want {
		if _, ok := p.health[a]; !ok {
			p.health[a] = &state{}
			added = append(added, a)
		}
	}
	p.order = want
	closing := p.reselectLocked()
	for c := range p.conns {
		if _, ok := p.health[c.addr]; !ok {
			closing = append(closing, c)
			delete(p.conns, c)
		}
	}
	p.mu.Unlock()

	p.log.Info("server list", "servers", want)
	for _, c := range closing {
		c.close()
	}
	for _, stop := range stops {
		stop()
	}
	for _, a := range added {
		stop := p.startCheck(a)
		p.mu.Lock()
		if s, ok := p.health[a]; ok && !p.stopping {
			s.stop = stop
			stop = nil
		}
		p.mu.Unlock()
		if stop != nil { // removed or stopped meanwhile
			stop()
		}
	}
	if p.onChange != nil {
		p.onChange()
	}
}

// servers returns the known servers in preference order.
func (p *pool) servers() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.order)
}

// stored returns the servers to store: those last learned (which need
// not include the fallback, say a DNS name in front of the servers), or
// the fallback while none were.
func (p *pool) stored() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.learned) == 0 {
		return slices.Clone(p.order)
	}
	return slices.Clone(p.learned)
}

// report records the result of one health check of addr.
func (p *pool) report(addr string, err error) {
	p.mu.Lock()
	s, ok := p.health[addr]
	if !ok || p.stopping {
		p.mu.Unlock()
		return
	}
	healthy := err == nil
	changed := !s.checked || s.healthy != healthy
	s.checked, s.healthy = true, healthy
	var closing []*pair
	if changed {
		closing = p.reselectLocked()
	}
	p.mu.Unlock()

	if changed {
		if healthy {
			p.log.Info("server healthy", "server", addr)
		} else {
			p.log.Warn("server unhealthy", "server", addr, "error", err)
		}
	}
	for _, c := range closing {
		c.close()
	}
	if healthy && p.onHealthy != nil {
		p.onHealthy()
	}
}

// reselectLocked keeps the active server while it is healthy; otherwise it
// switches to the first healthy server and returns the connections to
// other servers, for the caller to close once it released the lock. With
// no healthy server the active one stays: its connections may still work.
func (p *pool) reselectLocked() []*pair {
	if s, ok := p.health[p.active]; ok && s.healthy {
		return nil
	}
	next := ""
	for _, a := range p.order {
		if p.health[a].healthy {
			next = a
			break
		}
	}
	if next == "" {
		if _, ok := p.health[p.active]; ok || len(p.order) == 0 {
			return nil
		}
		next = p.order[0] // no server yet, or the active one was removed
	}
	if s, ok := p.health[p.active]; ok && s.checked && p.active != next {
		p.log.Warn("switching server", "from", p.active, "to", next)
	} else if p.active != next {
		p.log.Info("using server", "server", next)
	}
	p.active = next
	p.gen++
	var closing []*pair
	for c := range p.conns {
		if c.addr != next {
			closing = append(closing, c)
			delete(p.conns, c)
		}
	}
	return closing
}

// candidates returns the servers to dial for a new connection, the active
// one first, then the other healthy ones, then the rest; and the switch
// generation they were chosen in.
func (p *pool) candidates() ([]string, uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.order))
	if _, ok := p.health[p.active]; ok {
		out = append(out, p.active)
	}
	for _, healthy := range []bool{true, false} {
		for _, a := range p.order {
			if a != p.active && p.health[a].healthy == healthy {
				out = append(out, a)
			}
		}
	}
	return out, p.gen
}

// track registers a proxied connection chosen in generation gen. It
// reports false (and the caller closes c) if the pool switched servers
// since then and c goes to a server other than the new active one, or if
// the pool is stopping.
func (p *pool) track(c *pair, gen uint64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopping || (gen != p.gen && c.addr != p.active) {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *pool) untrack(c *pair) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
}

// activeServer returns the server new connections go to first.
func (p *pool) activeServer() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.active
}

// stop stops all health checks and closes all connections.
func (p *pool) stop() {
	p.mu.Lock()
	p.stopping = true
	var stops []func()
	for _, s := range p.health {
		if s.stop != nil {
			stops = append(stops, s.stop)
		}
	}
	conns := p.conns
	p.conns = map[*pair]struct{}{}
	p.mu.Unlock()
	for _, stop := range stops {
		stop()
	}
	for c := range conns {
		c.close()
	}
}

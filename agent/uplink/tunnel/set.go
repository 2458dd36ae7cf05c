package tunnel

import (
	"context"
	"log/slog"
	"slices"
	"sync"

	"github.com/kedge/kedge/embedded/component"
)

// Set is the tunnel as an agent component: one session to every server it
// knows, each kept by its own Client loop (own jittered backoff, own pings
// and dead-link deadline), so that every server's apiserver reaches this
// node through its own session. It starts with Server alone; SetServers
// (the load balancer's list) replaces the list at any time, before or
// during Run: a new server gets a session, a removed one has its session
// closed. Ready at once; sessions connect in the background.
type Set struct {
	// Server is the --server URL, used until SetServers is first called.
	Server string
	// CertFile, KeyFile, CAFile and Allow are as in Client, shared by all
	// sessions.
	CertFile, KeyFile, CAFile string
	Allow                     *Allow
	Log                       *slog.Logger

	mu      sync.Mutex
	servers []string // https:// URLs; nil until SetServers
	changed chan struct{}
}

var _ component.Component = (*Set)(nil)

// Name implements component.Component.
func (s *Set) Name() string { return "tunnel" }

// SetServers replaces the servers (host:port) to keep sessions with. An
// empty list is ignored (the last one stays). Safe for concurrent use.
func (s *Set) SetServers(addrs []string) {
	if len(addrs) == 0 {
		return
	}
	urls := make([]string, 0, len(addrs))
	for _, a := range addrs {
		urls = append(urls, "https://"+a)
	}
	slices.Sort(urls)
	urls = slices.Compact(urls)
	s.mu.Lock()
	defer s.mu.Unlock()
	if slices.Equal(urls, s.servers) {
		return
	}
	s.servers = urls
	s.signalLocked()
}

func (s *Set) signalLocked() {
	if s.changed == nil {
		s.changed = make(chan struct{}, 1)
	}
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// want returns the servers to keep sessions with and the channel that is
// signalled when they change.
func (s *Set) want() ([]string, chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed == nil {
		s.changed = make(chan struct{}, 1)
	}
	if s.servers == nil {
		return []string{s.Server}, s.changed
	}
	return slices.Clone(s.servers), s.changed
}

// Run implements component.Component. It returns nil when ctx is done,
// after every session was closed.
func (s *Set) Run(ctx context.Context, ready func()) error {
	ready()
	type loop struct {
		cancel context.CancelFunc
		done   chan struct{}
	}
	running := map[string]loop{}
	stop := func(server string) {
		l := running[server]
		l.cancel()
		<-l.done
		delete(running, server)
	}
	defer func() {
		for server := range running {
			stop(server)
		}
	}()
	for {
		want, changed := s.want()
		for server := range running {
			if !slices.Contains(want, server) {
				s.Log.Info("closing the tunnel to a server no longer listed", "server", server)
				stop(server)
			}
		}
		for _, server := range want {
			if _, ok := running[server]; ok {
				continue
			}
			c := &Client{Server: server, CertFile: s.CertFile, KeyFile: s.KeyFile, CAFile: s.CAFile,
				Allow: s.Allow, Log: s.Log}
			cctx, cancel := context.WithCancel(ctx)
			l := loop{cancel: cancel, done: make(chan struct{})}
			running[server] = l
			go func() {
				defer close(l.done)
				_ = c.Run(cctx, func() {}) // returns nil once cctx is done
			}()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}

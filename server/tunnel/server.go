// Package tunnel is the server end of the reverse tunnels that agents open
// to reach their kubelets and pods from the apiserver without any inbound
// port on the agent: a websocket endpoint (remotedialer) on the public port
// for nodes that authenticate with their kubelet client certificate, and a
// loopback HTTP CONNECT proxy that kube-apiserver uses as its "cluster"
// egress, dialing through a node's session when the target is that node's
// IP or inside its pod CIDR, and directly otherwise.
package tunnel

import (
	"bufio"
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rancher/remotedialer"
	"k8s.io/client-go/kubernetes"

	"github.com/kedge/kedge/embedded/component"
	"github.com/kedge/kedge/shared/tunnelwire"
)

// Server is the tunnel endpoint and the apiserver's egress proxy. Its
// ServeHTTP (the websocket endpoint) may be served before Run starts; Run
// closes every session when ctx ends; Egress serves the CONNECT proxy.
type Server struct {
	// ClientCA verifies the nodes' client certificates.
	ClientCA *x509.CertPool
	// Listener is the CONNECT proxy's listener, a unix socket only the
	// apiserver's user can open (see ListenEgress); Egress closes it.
	Listener net.Listener
	// Client watches Nodes for their IPs and pod CIDRs.
	Client kubernetes.Interface
	Log    *slog.Logger

	once     sync.Once
	rd       *remotedialer.Server
	nodes    *nodeIndex
	mu       sync.Mutex
	sessions map[string]*session
	closed   bool
	proxied  map[net.Conn]struct{} // CONNECT connections being spliced
	proxy    *http.Server          // the CONNECT proxy, once Egress serves it
	// stopIndex ends the proxy's Node watch.
	stopIndex func()
	// proxyStopped: Run has closed the proxy (or Egress must not serve).
	proxyStopped bool
	tunneled     map[string]bool // nodes that have had a session
}

var _ component.Component = (*Server)(nil)

// Name implements component.Component.
func (s *Server) Name() string { return "tunnel-server" }

// session is one node's websocket connection.
type session struct {
	node    string
	done    chan struct{} // closed when its handler returned
	mu      sync.Mutex
	conn    net.Conn // set once hijacked
	stopped bool
}

// stop closes the session's connection, now or as soon as it is hijacked.
func (x *session) stop() {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.stopped = true
	if x.conn != nil {
		_ = x.conn.Close()
	}
}

type nodeKey struct{}

func (s *Server) init() {
	s.once.Do(func() {
		s.sessions = map[string]*session{}
		s.proxied = map[net.Conn]struct{}{}
		s.tunneled = map[string]bool{}
		s.rd = remotedialer.New(func(r *http.Request) (string, bool, error) {
			node, ok := r.Context().Value(nodeKey{}).(string)
			return node, ok, nil
		}, func(w http.ResponseWriter, _ *http.Request, code int, err error) {
			http.Error(w, err.Error(), code)
		})
		s.nodes = newNodeIndex()
	})
}

// ServeHTTP is the websocket endpoint. It refuses a request without a valid
// node certificate (401) or with another identity (403) before upgrading,
// and blocks for the life of the session. A node's new session replaces
// its old one. Safe for concurrent use.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.init()
	node, err := nodeIdentity(r, s.ClientCA)
	if err != nil {
		s.Log.Warn("tunnel refused", "remote", r.RemoteAddr, "reason", err)
		http.Error(w, err.Error(), statusOf(err))
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		http.Error(w, "a websocket upgrade is required", http.StatusBadRequest)
		return
	}
	cur := &session{node: node, done: make(chan struct{})}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "the server is stopping", http.StatusServiceUnavailable)
		return
	}
	old := s.sessions[node]
	s.sessions[node] = cur
	s.tunneled[node] = true
	s.mu.Unlock()
	if old != nil {
		s.Log.Info("a new tunnel session replaces the old one", "node", node)
		old.stop()
		select {
		case <-old.done:
		case <-time.After(5 * time.Second):
			s.Log.Warn("the old tunnel session did not end in time", "node", node)
		}
	}
	start := time.Now()
	sessionsStarted.WithLabelValues(node).Inc()
	s.Log.Info("tunnel session started", "node", node, "remote", r.RemoteAddr)
	s.rd.ServeHTTP(&hijacker{ResponseWriter: w, session: cur, log: s.Log},
		r.WithContext(context.WithValue(r.Context(), nodeKey{}, node)))
	cur.stop()
	close(cur.done)
	s.mu.Lock()
	if s.sessions[node] == cur {
		delete(s.sessions, node)
	}
	s.mu.Unlock()
	sessionsEnded.WithLabelValues(node).Inc()
	s.Log.Info("tunnel session ended", "node", node, "seconds", int(time.Since(start).Seconds()))
}

// hadSession reports whether node has had a session since the start.
func (s *Server) hadSession(node string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tunneled[node]
}

// Sessions lists the nodes that have a session now, sorted.
func (s *Server) Sessions() []string {
	s.init()
	nodes := s.rd.ListClients()
	sort.Strings(nodes)
	return nodes
}

// hijacker hands the session's connection to remotedialer after tuning TCP
// liveness and recording it, so that a newer session or Run's end can
// close it (http.Server.Shutdown does not close hijacked connections).
type hijacker struct {
	http.ResponseWriter
	session *session
	log     *slog.Logger
}

func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if err := tunnelwire.TuneTCP(c); err != nil {
		h.log.Debug("cannot tune the tunnel's TCP liveness", "node", h.session.node, "error", err)
	}
	h.session.mu.Lock()
	defer h.session.mu.Unlock()
	if h.session.stopped {
		c.Close()
		return nil, nil, errSuperseded
	}
	h.session.conn = c
	return c, brw, nil
}

// Run accepts tunnel sessions (ServeHTTP) until ctx is done, then closes
// the egress proxy, every session and every connection the proxy spliced,
// so that the apiserver's streams through them end and it dials nothing
// more before it stops. It is ready at once.
func (s *Server) Run(ctx context.Context, ready func()) error {
	s.init()
	register()
	ready()
	<-ctx.Done()
	s.stopProxy()
	s.closeSessions()
	s.closeProxied()
	return nil
}

// stopProxy closes the CONNECT proxy that Egress serves, so the apiserver
// dials nothing more through it while it shuts down, and stops the proxy's
// Node watch, which would otherwise hold the apiserver's graceful shutdown
// open (it waits for its clients' watches to end).
func (s *Server) stopProxy() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.proxyStopped = true
	if s.proxy != nil {
		_ = s.proxy.Close()
	}
	if s.stopIndex != nil {
		s.stopIndex()
	}
}

// Egress is the apiserver's CONNECT proxy on Listener as a component. It
// starts before the apiserver and is ready at once: the apiserver dials
// out while it starts (the aggregator fetches the discovery of every
// APIService before it reports ready, kedge's own metrics API among them),
// and a proxy that accepted but did not answer made each such dial wait
// for the caller's timeout. Its dials wait for its Node cache to sync,
// which needs only a serving apiserver, not a ready one. Run closes the
// proxy (before the apiserver stops); Egress's own end only waits for ctx.
func (s *Server) Egress() component.Component { return egress{s} }

type egress struct{ s *Server }

func (e egress) Name() string { return "egress-proxy" }

func (e egress) Run(ctx context.Context, ready func()) error {
	s := e.s
	s.init()
	proxy := s.connectServer()
	indexCtx, stopIndex := context.WithCancel(ctx)
	defer stopIndex()
	s.mu.Lock()
	if s.proxyStopped {
		s.mu.Unlock()
		return nil
	}
	s.proxy, s.stopIndex = proxy, stopIndex
	s.mu.Unlock()
	served := make(chan error, 1)
	go func() { served <- proxy.Serve(s.Listener) }()
	go func() { _ = s.nodes.run(indexCtx, s.Client) }() // fails only on a bad transform
	ready()
	var err error
	select {
	case err = <-served:
		if errors.Is(err, http.ErrServerClosed) { // Run closed it: wait for the end
			<-ctx.Done()
		}
	case <-ctx.Done():
	}
	_ = proxy.Close()
	s.closeProxied()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// closeSessions stops every session and refuses new ones.
func (s *Server) closeSessions() {
	s.mu.Lock()
	s.closed = true
	var all []*session
	for _, x := range s.sessions {
		all = append(all, x)
	}
	s.mu.Unlock()
	for _, x := range all {
		x.stop()
	}
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	for _, x := range all {
		select {
		case <-x.done:
		case <-deadline.C:
			s.Log.Warn("tunnel sessions did not end in time")
			return
		}
	}
}

// errSuperseded ends a session that a newer one of the same node replaced
// before it was established.
var errSuperseded = errors.New("superseded by a newer session of the same node")

package tunnel

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"time"
)

const (
	// dialTimeout bounds one dial of the CONNECT proxy, direct or tunnelled.
	dialTimeout = 30 * time.Second
	// reconnectWait is how long a dial to a node that had a session waits
	// for it to come back before dialing directly: agents reconnect within
	// a few seconds of a link returning, and behind NAT a direct dial
	// only hangs.
	reconnectWait = 5 * time.Second
)

// connectServer is the CONNECT proxy: plain HTTP/1.1 (CONNECT needs to
// hijack the connection) on a unix socket that only the server's user can
// open. No certificate is involved, so nothing here expires: upstream's
// egress dialer reads its TLS client certificate once at start and could
// not follow a renewal.
func (s *Server) connectServer() *http.Server {
	return &http.Server{
		Handler:           http.HandlerFunc(s.serveConnect),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.Log.Handler(), slog.LevelDebug),
	}
}

// serveConnect answers `CONNECT host:port` from kube-apiserver: it dials
// the target (through a tunnel or directly, see dialer), answers 200 and
// splices the two connections until either side closes.
func (s *Server) serveConnect(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		http.Error(w, "only CONNECT is served here", http.StatusMethodNotAllowed)
		return
	}
	addr := r.Host
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		http.Error(w, fmt.Sprintf("CONNECT target %q: %v", addr, err), http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), dialTimeout)
	dial, via := s.dialer(ctx, host)
	upstream, err := dial(ctx, "tcp", addr)
	cancel()
	if err != nil {
		s.Log.Debug("egress dial failed", "address", addr, "via", via, "error", err)
		http.Error(w, fmt.Sprintf("dial %s via %s: %v", addr, via, err), http.StatusBadGateway)
		return
	}
	s.Log.Debug("egress", "address", addr, "via", via)
	down, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		upstream.Close()
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if _, err := io.WriteString(down, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		upstream.Close()
		down.Close()
		return
	}
	var from io.Reader = down
	if brw.Reader.Buffered() > 0 {
		from = io.MultiReader(io.LimitReader(brw.Reader, int64(brw.Reader.Buffered())), down)
	}
	if !s.track(down, upstream) {
		return
	}
	defer s.untrack(down, upstream)
	splice(from, down, upstream)
}

// dialer picks how to reach host: through the tunnel session of the node
// that host belongs to (its InternalIP or pod CIDR), or directly when
// there is no such node or it has no session (the server's own node, or an
// agent that can be reached without a tunnel). It decides once the Node
// cache has synced. A node whose session is gone gets reconnectWait to
// open a new one. via names the choice.
func (s *Server) dialer(ctx context.Context, host string) (dial func(context.Context, string, string) (net.Conn, error), via string) {
	if ip, err := netip.ParseAddr(host); err == nil && s.nodes.wait(ctx) {
		if node := s.nodes.lookup(ip); node != "" && s.waitSession(ctx, node) {
			return s.rd.Dialer(node), "tunnel:" + node
		}
	}
	d := &net.Dialer{}
	return d.DialContext, "direct"
}

// waitSession reports whether node has a session, waiting up to
// reconnectWait for a node that had one before.
func (s *Server) waitSession(ctx context.Context, node string) bool {
	if s.rd.HasSession(node) {
		return true
	}
	if !s.hadSession(node) {
		return false
	}
	deadline := time.NewTimer(reconnectWait)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-deadline.C:
			return false
		case <-tick.C:
			if s.rd.HasSession(node) {
				return true
			}
		}
	}
}

// splice copies both ways until one side ends, then closes both.
func splice(fromDown io.Reader, down, up net.Conn) {
	var once sync.Once
	closeBoth := func() {
		once.Do(func() {
			down.Close()
			up.Close()
		})
	}
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(up, fromDown)
		closeBoth()
		close(done)
	}()
	_, _ = io.Copy(down, up)
	closeBoth()
	<-done
}

// track records a spliced pair so that Run's end closes it; it refuses
// (and closes the pair) once the server is stopping.
func (s *Server) track(conns ...net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		for _, c := range conns {
			c.Close()
		}
		return false
	}
	for _, c := range conns {
		s.proxied[c] = struct{}{}
	}
	return true
}

func (s *Server) untrack(conns ...net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range conns {
		delete(s.proxied, c)
	}
}

// closeProxied closes every spliced connection.
func (s *Server) closeProxied() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.proxied {
		c.Close()
	}
}

// ListenEgress listens on the unix socket at path for the CONNECT proxy,
// replacing a socket left by an earlier start, with mode 0600 so only this
// user (the apiserver in this process) can open it.
func ListenEgress(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, err
		}
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

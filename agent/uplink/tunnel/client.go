// Package tunnel is the agent end of the reverse tunnels: it keeps a
// websocket (remotedialer) session open to every server (Set, one Client
// loop each), authenticated with the node's kubelet client certificate,
// through which each server's apiserver reaches this node's kubelet and
// pods without any inbound port.
package tunnel

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rancher/remotedialer"

	"github.com/kedge/kedge/embedded/backoff"
	"github.com/kedge/kedge/embedded/component"
	"github.com/kedge/kedge/shared/joinapi"
	"github.com/kedge/kedge/shared/tunnelwire"
)

// Reconnect backoff: it starts at minBackoff, doubles up to maxBackoff and
// each wait is drawn from [b/2, b), so that after a link returns the tunnel
// is back within maxBackoff plus one handshake.
const (
	minBackoff = 250 * time.Millisecond
	maxBackoff = 3 * time.Second
	// stableAfter is how long a session must have lasted for the backoff to
	// start again from minBackoff.
	stableAfter = 10 * time.Second
	dialTimeout = 5 * time.Second
	// handshakeTimeout bounds TCP connect, TLS and the websocket upgrade
	// together. Once the TCP connect (at most dialTimeout) got through, the
	// link is up, so the rest may take longer: on a lossy, slow link each
	// lost packet of the handshake costs a retransmission of 1 s or more.
	handshakeTimeout = 15 * time.Second
)

// Client keeps the session to one server. As a component it is ready at
// once (the server may be unreachable) and connects in the background,
// reconnecting until ctx is done.
type Client struct {
	// Server is the server's https:// URL.
	Server string
	// CertFile and KeyFile are the kubelet client certificate, read at
	// every connect (so renewed files are picked up); CAFile is the server CA.
	CertFile, KeyFile, CAFile string
	// Allow decides which dials from the server are made.
	Allow *Allow
	Log   *slog.Logger
}

var _ component.Component = (*Client)(nil)

// Name implements component.Component.
func (c *Client) Name() string { return "tunnel" }

// Run implements component.Component.
func (c *Client) Run(ctx context.Context, ready func()) error {
	register()
	ready()
	// Waits from [b/2, b) for b from minBackoff to maxBackoff.
	retry := backoff.Backoff{Min: minBackoff / 2, Max: maxBackoff / 2, Jitter: 1}
	failing := false
	for {
		start := time.Now()
		connected, err := c.connect(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if connected && time.Since(start) >= stableAfter {
			retry.Reset()
		}
		wait := retry.Next()
		switch {
		case connected:
			sessionsLost.Inc()
			c.Log.Warn("tunnel lost; reconnecting", "server", c.Server, "error", err, "retry_in", wait.Round(time.Millisecond))
			failing = false
		case !failing:
			c.Log.Warn("cannot open the tunnel; retrying", "server", c.Server, "error", err, "retry_in", wait.Round(time.Millisecond))
			failing = true
		default:
			c.Log.Debug("cannot open the tunnel; retrying", "server", c.Server, "error", err, "retry_in", wait.Round(time.Millisecond))
		}
		if !backoff.Sleep(ctx, wait) {
			return nil
		}
	}
}

// connect opens one session and serves it until it ends; connected says
// whether the websocket was established.
func (c *Client) connect(ctx context.Context) (connected bool, err error) {
	tlsConfig, err := c.tlsConfig()
	if err != nil {
		return false, err
	}
	wsURL, err := tunnelURL(c.Server)
	if err != nil {
		return false, err
	}
	var raw atomic.Pointer[watchedConn]
	dialer := &websocket.Dialer{
		HandshakeTimeout: handshakeTimeout,
		TLSClientConfig:  tlsConfig,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			d := &net.Dialer{Timeout: dialTimeout}
			conn, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			if err := tunnelwire.TuneTCP(conn); err != nil {
				c.Log.Debug("cannot tune the tunnel's TCP liveness", "error", err)
			}
			w := watch(conn)
			raw.Store(w)
			return w, nil
		},
	}
	ws, resp, err := dialer.DialContext(ctx, wsURL, nil)
	if err != nil {
		if resp != nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			return false, fmt.Errorf("%s: %s: %s", wsURL, resp.Status, strings.TrimSpace(string(body)))
		}
		return false, err
	}
	defer ws.Close()
	c.Log.Info("tunnel connected", "server", c.Server)

	// Refusals happen in Allow.Dial, which fails only that connection:
	// remotedialer ends the whole session when its authorizer says no.
	session := remotedialer.NewClientSessionWithDialer(func(string, string) bool { return true }, ws, c.Allow.Dial)
	defer session.Close()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go keepAlive(sctx, ws, raw.Load(), c.Log.With("server", c.Server))
	_, err = session.Serve(sctx)
	if ctx.Err() == nil && err == nil {
		err = fmt.Errorf("session ended")
	}
	return true, err
}

// keepAlive pings every PingInterval and closes ws when nothing has been
// read for DeadAfter (or when ctx is done), which ends the session's reads.
func keepAlive(ctx context.Context, ws *websocket.Conn, raw *watchedConn, log *slog.Logger) {
	t := time.NewTicker(tunnelwire.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			ws.Close()
			return
		case <-t.C:
		}
		if idle := raw.idle(); idle >= tunnelwire.DeadAfter {
			log.Warn("tunnel link is dead; closing it", "silent_for", idle.Round(100*time.Millisecond))
			ws.Close()
			return
		}
		// An error here shows up as silence, which the check above acts on.
		_ = ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(tunnelwire.PingInterval))
	}
}

func (c *Client) tlsConfig() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("kubelet client certificate: %w", err)
	}
	caPEM, err := os.ReadFile(c.CAFile)
	if err != nil {
		return nil, fmt.Errorf("server CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("server CA %s: no certificates", c.CAFile)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// tunnelURL is the wss:// URL of the tunnel endpoint of an https:// server.
func tunnelURL(server string) (string, error) {
	u, err := url.Parse(server)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("server %q is not an https:// URL", server)
	}
	return (&url.URL{Scheme: "wss", Host: u.Host, Path: joinapi.TunnelPath}).String(), nil
}

// watchedConn records when it last read anything.
type watchedConn struct {
	net.Conn
	last atomic.Int64 // unix nanoseconds
}

func watch(c net.Conn) *watchedConn {
	w := &watchedConn{Conn: c}
	w.last.Store(time.Now().UnixNano())
	return w
}

func (w *watchedConn) Read(p []byte) (int, error) {
	n, err := w.Conn.Read(p)
	if n > 0 {
		w.last.Store(time.Now().UnixNano())
	}
	return n, err
}

func (w *watchedConn) idle() time.Duration {
	if w == nil {
		return 0
	}
	return time.Since(time.Unix(0, w.last.Load()))
}

// Package apicache is the agent's local API endpoint: a caching reverse
// proxy in front of the servers that the node's own components (kubelet,
// kube-proxy, flannel, the agent's clients) use. While a server answers it
// passes every request through and records what those components read
// (lists kept current by their watches, objects, ServiceAccount tokens) in
// an on-disk cache; when no server answers it serves reads from that cache,
// holds watches open until a server is back, and refuses writes with 503.
// So a node keeps its pods, Services and network through an outage, and an
// agent can even start (after a reboot) without a server.
package apicache

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/kedge/kedge/embedded/component"
	"github.com/kedge/kedge/shared/keypair"
)

// Identity is a client certificate the proxy uses upstream on behalf of
// local clients that present a certificate with the same common name.
type Identity struct{ CertFile, KeyFile string }

// Proxy is the local endpoint as a component.
type Proxy struct {
	// Addr is the loopback host:port to listen on.
	Addr string
	// Upstream is the servers' API URL (the load balancer or --server).
	Upstream string
	// ServerCA verifies the upstream servers.
	ServerCA string
	// ClientCA verifies the local clients' certificates.
	ClientCA string
	// ServingCert and ServingKey are the local endpoint's certificate.
	ServingCert, ServingKey string
	Identities              []Identity
	// Dir holds the cache (0700, files 0600).
	Dir string
	Log *slog.Logger

	store       *Store
	upstream    *url.URL
	proxies     map[string]*upstreamAs // by client common name
	probe       *upstreamAs
	mu          sync.Mutex
	online      bool
	onlineSince time.Time
	onlineNow   chan struct{} // closed when the servers answer again
}

// What the cache forgets: an entry that no client asked for and no server
// answered for in maxIdle, checked every pruneEvery once the servers have
// answered for pruneGrace without a break (time for the node's components
// to ask again for everything they still use after an outage).
const (
	maxIdle    = 24 * time.Hour
	pruneEvery = 10 * time.Minute
	pruneGrace = time.Hour
)

var _ component.Component = (*Proxy)(nil)

// Name implements component.Component.
func (p *Proxy) Name() string { return "api-cache" }

// errUnavailable marks upstream answers that mean "no server to serve this".
var errUnavailable = errors.New("the server is unavailable")

type ctxKey struct{}

// Run implements component.Component: it serves until ctx is cancelled,
// then flushes the cache. It is ready once it accepts TLS connections.
func (p *Proxy) Run(ctx context.Context, ready func()) error {
	if err := p.setup(); err != nil {
		return err
	}
	serving, err := keypair.Load(p.ServingCert, p.ServingKey)
	if err != nil {
		return fmt.Errorf("api cache serving certificate: %w", err)
	}
	clientCAs, err := certPool(p.ClientCA)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", p.Addr)
	if err != nil {
		return fmt.Errorf("api cache: %w", err)
	}
	srv := &http.Server{
		Handler: p,
		TLSConfig: &tls.Config{GetCertificate: serving.GetCertificate, MinVersion: tls.VersionTLS12,
			ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCAs},
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(p.Log.Handler(), slog.LevelDebug),
	}
	// Know whether a server answers before the first client asks.
	p.probeOnce(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.ServeTLS(l, "", "") }()
	go p.watchHealth(ctx)
	go wait.UntilWithContext(ctx, p.flush, 2*time.Second)
	go wait.UntilWithContext(ctx, p.prune, pruneEvery)
	go component.PollReady(ctx, 50*time.Millisecond, func(context.Context) error {
		c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{InsecureSkipVerify: true}) // a handshake check of our own listener
		if err == nil {
			c.Close()
		}
		return err
	}, ready)
	select {
	case err = <-served:
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if srv.Shutdown(shutdown) != nil {
			_ = srv.Close() // held watches do not end by themselves
		}
		cancel()
		if e := <-served; !errors.Is(e, http.ErrServerClosed) {
			err = e
		}
	}
	if ferr := p.store.Flush(); ferr != nil {
		p.Log.Warn("could not write the API cache", "error", ferr)
	}
	return err
}

func (p *Proxy) setup() error {
	var err error
	if p.upstream, err = url.Parse(p.Upstream); err != nil {
		return fmt.Errorf("api cache upstream: %w", err)
	}
	if p.store, err = OpenStore(p.Dir, p.Log); err != nil {
		return err
	}
	roots, err := certPool(p.ServerCA)
	if err != nil {
		return err
	}
	p.proxies = map[string]*upstreamAs{}
	p.onlineNow = make(chan struct{})
	for _, id := range p.Identities {
		files, err := keypair.Load(id.CertFile, id.KeyFile)
		if err != nil {
			return fmt.Errorf("api cache identity: %w", err)
		}
		u := &upstreamAs{p: p, roots: roots, files: files}
		cert, _ := files.Certificate()
		if p.probe == nil {
			p.probe = u
		}
		p.proxies[cert.Leaf.Subject.CommonName] = u
	}
	if len(p.proxies) == 0 {
		return errors.New("api cache: no identities")
	}
	return nil
}

// ServeHTTP implements http.Handler for the node's components.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		writeStatus(w, http.StatusUnauthorized, "a client certificate is required")
		return
	}
	identity := r.TLS.PeerCertificates[0].Subject.CommonName
	up, ok := p.proxies[identity]
	if !ok {
		writeStatus(w, http.StatusForbidden, fmt.Sprintf("kedge's local API endpoint does not serve %q", identity))
		return
	}
	req := classify(identity, r)
	if req.tokenRequest {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			writeStatus(w, http.StatusBadRequest, "cannot read the request body")
			return
		}
		sum := sha256.Sum256(body)
		req.key += " " + hex.EncodeToString(sum[:])
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		r.ContentLength = int64(len(body))
	}
	if r.Method == http.MethodGet || req.tokenRequest {
		p.store.Touch(req.key)
		// The cache reads plain JSON; every Kubernetes client accepts it.
		// (Upstream compression is undone by the proxy's own transport.)
		if strings.Contains(r.Header.Get("Accept"), "protobuf") {
			r.Header.Set("Accept", "application/json, */*")
		}
		r.Header.Del("Accept-Encoding")
	}
	if !p.isOnline() {
		p.serveCached(w, r, req)
		return
	}
	up.proxy().ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, req)))
}

// record is the ReverseProxy's ModifyResponse: it tees cacheable answers
// into the store.
func (p *Proxy) record(resp *http.Response) error {
	req, _ := resp.Request.Context().Value(ctxKey{}).(request)
	switch {
	case resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusGatewayTimeout:
		if resp.Request.Method == http.MethodGet || req.tokenRequest {
			return errUnavailable
		}
	case req.tokenRequest && resp.StatusCode == http.StatusCreated:
		ct := resp.Header.Get("Content-Type")
		resp.Body = &bufferTee{body: resp.Body, done: func(b []byte) { p.store.PutRaw(req.key, ct, b) }}
	case resp.Request.Method == http.MethodGet && resp.StatusCode == http.StatusNotFound && !req.watch:
		// Deleted (or never there): an outage must not bring it back.
		if err := p.store.Forget(req.key); err != nil {
			p.Log.Warn("forgetting a deleted object's cache entry", "error", err)
		}
	case resp.Request.Method != http.MethodGet || resp.StatusCode != http.StatusOK ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json"):
	case req.watch:
		resp.Body = newWatchTee(resp.Body, p.store, req.key, req.initialEvents)
	default:
		ct := resp.Header.Get("Content-Type")
		resp.Body = &bufferTee{body: resp.Body, done: func(b []byte) {
			if !p.store.PutListPage(req.key, req.continueToken != "", b) {
				p.store.PutRaw(req.key, ct, b)
			}
		}}
	}
	return nil
}

// upstreamFailed is the ReverseProxy's ErrorHandler: no server answered.
func (p *Proxy) upstreamFailed(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return // the client went away
	}
	req, _ := r.Context().Value(ctxKey{}).(request)
	if !errors.Is(err, errUnavailable) {
		p.setOnline(false, err)
	}
	p.serveCached(w, r, req)
}

// serveCached answers from the cache.
func (p *Proxy) serveCached(w http.ResponseWriter, r *http.Request, req request) {
	switch {
	case req.tokenRequest:
		if body, ct, ok := p.store.Raw(req.key); ok {
			w.Header().Set("Content-Type", ct)
			w.WriteHeader(http.StatusCreated)
			w.Write(body)
			return
		}
	case r.Method != http.MethodGet:
		writeStatus(w, http.StatusServiceUnavailable, "kedge: no server is reachable; writes wait until one is")
		return
	case req.watch:
		p.holdWatch(w, r, req)
		return
	default:
		if items, kind, apiVersion, rv, ok := p.store.List(req.key); ok {
			w.Header().Set("Content-Type", "application/json")
			writeList(w, kind, apiVersion, rv, items)
			return
		}
		if body, ct, ok := p.store.Raw(req.key); ok {
			w.Header().Set("Content-Type", ct)
			w.Write(body)
			return
		}
	}
	writeStatus(w, http.StatusServiceUnavailable, "kedge: no server is reachable and the local cache has nothing for this request")
}

// Online reports whether a server answered the last health check.
func (p *Proxy) Online() bool { return p.isOnline() }

func (p *Proxy) isOnline() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.online
}

// backOnline returns a channel closed when the servers answer again.
func (p *Proxy) backOnline() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.onlineNow
}

func (p *Proxy) setOnline(up bool, why error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if up == p.online {
		return
	}
	p.online = up
	if up {
		p.onlineSince = time.Now()
		close(p.onlineNow)
		p.Log.Info("a server answers again; the local API endpoint passes requests through")
	} else {
		p.onlineNow = make(chan struct{})
		p.Log.Warn("no server answers; the local API endpoint serves the node from its cache", "error", why, "entries", p.store.Len())
	}
}

// watchHealth asks the servers' /readyz every second and records whether
// they answer.
func (p *Proxy) watchHealth(ctx context.Context) {
	for {
		p.probeOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// probeOnce asks the servers' /readyz once and records the answer.
func (p *Proxy) probeOnce(ctx context.Context) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.upstream.JoinPath("/readyz").String(), nil)
	resp, err := p.probe.client().Do(req)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("readyz: %s", resp.Status)
		}
	}
	if ctx.Err() == nil {
		p.setOnline(err == nil, err)
	}
}

// flush writes the cache's changes to disk.
func (p *Proxy) flush(context.Context) {
	if err := p.store.Flush(); err != nil {
		p.Log.Warn("could not write the API cache", "error", err)
	}
}

// prune drops the entries nobody uses any more (Store.Prune) once the
// servers have answered for pruneGrace without a break.
func (p *Proxy) prune(context.Context) {
	p.mu.Lock()
	due := p.online && time.Since(p.onlineSince) >= pruneGrace
	p.mu.Unlock()
	if !due {
		return
	}
	n, err := p.store.Prune(time.Now().Add(-maxIdle))
	if err != nil {
		p.Log.Warn("could not remove unused API cache entries", "error", err)
	}
	if n > 0 {
		p.Log.Info("removed unused API cache entries", "removed", n, "kept", p.store.Len())
	}
}

func certPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("api cache: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("api cache: no certificates in %s", file)
	}
	return pool, nil
}

// Package lb is the agent's client-side load balancer: a TCP pass-through
// listener on loopback (default 127.0.0.1:6444) in front of every server's
// API port, so that the kubelet, kube-proxy and the agent's own clients keep
// reaching the API when one of several servers dies.
//
// It learns the servers from the default/kubernetes EndpointSlices (through
// itself), keeps them in a file for restarts while --server is down, checks
// each server's /readyz every 500 ms, sends new connections to one healthy
// server and sticks to it; when that server fails it switches to another
// healthy one and closes the connections to the failed one, so clients
// (client-go watches) reconnect at once. TLS passes through untouched: the
// clients verify the server certificate (which has 127.0.0.1 as a SAN).
package lb

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/kedge/kedge/embedded/component"
)

// Defaults of Balancer.
const (
	DefaultInterval    = 500 * time.Millisecond
	DefaultTimeout     = time.Second
	DefaultDialTimeout = 3 * time.Second
)

// Balancer is the load balancer as a component.
type Balancer struct {
	// Listen is the local address, for example 127.0.0.1:6444.
	Listen string
	// Server is the --server URL; its host:port is always a candidate.
	Server string
	// CAFile holds the cluster CA the agent pinned; /readyz checks verify
	// server certificates against it for Listen's host, as the clients do.
	CAFile string
	// StateFile keeps the known servers across restarts (lb-servers.json).
	StateFile string
	// Client, if set, learns the servers from the default/kubernetes
	// EndpointSlices; it should talk to the API through Listen.
	Client kubernetes.Interface
	// Interval between the checks of one server (default 500 ms), Timeout
	// of one check (default 1 s) and DialTimeout of one proxied connection
	// to one server (default 3 s).
	Interval, Timeout, DialTimeout time.Duration
	// OnServers, if set, is called with the servers the cluster lists
	// (host:port, sorted; from the EndpointSlices, or stored by an earlier
	// run), or with Server's alone while none are known: at the start and
	// whenever that list changes, one call at a time, from Run's
	// goroutines. The agent keeps a tunnel to each of them.
	OnServers func(servers []string)
	Log       *slog.Logger
}

var _ component.Component = (*Balancer)(nil)

// Name implements component.Component.
func (b *Balancer) Name() string { return "lb" }

// Run implements component.Component. It is ready once it listens and a
// server was healthy, or at once when servers were stored by an earlier
// run (so the agent starts while every server is down; it keeps
// listening and checking). Cancelling ctx closes the listener and every
// proxied connection.
func (b *Balancer) Run(ctx context.Context, ready func()) error {
	log := b.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	fallback, err := hostPort(b.Server)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	caPEM, err := os.ReadFile(b.CAFile)
	if err != nil {
		return fmt.Errorf("cluster CA: %w", err)
	}
	ca := x509.NewCertPool()
	if !ca.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("cluster CA: no certificate in %s", b.CAFile)
	}
	known, haveStored, err := loadServers(b.StateFile)
	if err != nil {
		log.Warn("ignoring the stored servers", "error", err)
	}
	listenHost, _, err := net.SplitHostPort(b.Listen)
	if err != nil {
		return fmt.Errorf("listen address: %w", err)
	}
	l, err := net.Listen("tcp", b.Listen)
	if err != nil {
		return err
	}

	// On return: stop the checks and close the connections, then end the
	// other goroutines and wait for all of them.
	chk := newChecker(ca, listenHost, orDefault(b.Timeout, DefaultTimeout))
	defer chk.close()
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	p := newPool(fallback)
	p.log = log
	due := make(chan struct{}, 1) // the list changed since it was stored
	p.onChange = func() {
		select {
		case due <- struct{}{}:
		default:
		}
	}
	healthy := make(chan struct{}) // closed once a server was healthy
	var healthyOnce sync.Once
	p.onHealthy = func() {
		healthyOnce.Do(func() {
			close(healthy)
			ready()
		})
	}
	interval := orDefault(b.Interval, DefaultInterval)
	p.startCheck = func(addr string) func() {
		cctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done)
			chk.loop(cctx, addr, interval, p.report)
		}()
		return func() { stop(); <-done }
	}
	defer p.stop()
	setServers := b.notifier(fallback, p.setServers)
	setServers(known)
	log.Info("load balancer listening", "address", l.Addr().String(), "servers", p.servers())
	if haveStored {
		ready()
	}

	wg.Add(1)
	go func() {
		defer wg.Done()
		<-ctx.Done()
		l.Close()
	}()
	if b.Client != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			discover(ctx, b.Client, setServers, log)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		b.store(ctx, p, healthy, due, log)
	}()

	dialTimeout := orDefault(b.DialTimeout, DefaultDialTimeout)
	for {
		conn, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("accept: %w", err)
			}
			log.Warn("accept", "error", err) // out of file descriptors, say
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			proxy(ctx, p, conn, dialTimeout, log)
		}()
	}
}

// notifier wraps set so that OnServers hears of every change of the
// learned servers (fallback alone while there are none).
func (b *Balancer) notifier(fallback string, set func([]string)) func([]string) {
	if b.OnServers == nil {
		return set
	}
	var mu sync.Mutex
	var last []string
	return func(learned []string) {
		mu.Lock()
		defer mu.Unlock()
		set(learned)
		listed := slices.Clone(learned)
		if len(listed) == 0 {
			listed = []string{fallback}
		}
		slices.Sort(listed)
		listed = slices.Compact(listed)
		if slices.Equal(listed, last) {
			return
		}
		last = listed
		b.OnServers(slices.Clone(listed))
	}
}

// store writes the learned servers once a server was healthy (before that
// the list is not known to lead anywhere) and whenever the list changes.
// --server is not stored unless it was learned: the next run adds it
// anyway, and OnServers must not hear it as a listed server.
func (b *Balancer) store(ctx context.Context, p *pool, healthy, due <-chan struct{}, log *slog.Logger) {
	select {
	case <-ctx.Done():
		return
	case <-healthy:
	}
	for {
		if err := saveServers(b.StateFile, p.stored()); err != nil {
			log.Warn("store servers", "file", b.StateFile, "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-due:
		}
	}
}

// proxy connects client to a server and copies both ways until either side
// closes, the pool closes the pair (server switch) or ctx ends.
func proxy(ctx context.Context, p *pool, client net.Conn, dialTimeout time.Duration, log *slog.Logger) {
	addrs, gen := p.candidates()
	d := net.Dialer{Timeout: dialTimeout}
	var server net.Conn
	var addr string
	for _, a := range addrs {
		c, err := d.DialContext(ctx, "tcp", a)
		if err == nil {
			server, addr = c, a
			break
		}
		log.Debug("dial server", "server", a, "error", err)
	}
	if server == nil {
		client.Close()
		return
	}
	c := &pair{client: client, server: server, addr: addr}
	if !p.track(c, gen) {
		c.close()
		return
	}
	defer p.untrack(c)
	done := make(chan struct{}, 2)
	go func() { io.Copy(server, client); done <- struct{}{} }()
	go func() { io.Copy(client, server); done <- struct{}{} }()
	<-done
	c.close()
	<-done
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

package lb

import (
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
	"sync"
	"sync/atomic"
	"testing"
	"time"

	certutil "k8s.io/client-go/util/cert"

	"github.com/kedge/kedge/scripts/testenv"
)

// backend is a real TLS server standing in for a kedge server: /readyz
// answers 200 while ready, /name answers its name, and /stream answers its
// name and then holds the connection open like a watch.
type backend struct {
	name  string
	srv   *httptest.Server
	ready atomic.Bool
	oks   atomic.Int64 // /readyz requests answered 200
	quit  chan struct{}
	link  *link // if set, clients reach the server through it
}

func newBackend(t *testing.T, name string) *backend { return startBackend(t, name, nil) }

// newForeignBackend is a backend whose certificate (for 127.0.0.1) comes
// from another CA.
func newForeignBackend(t *testing.T, name string) *backend {
	certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey("127.0.0.1", []net.IP{net.IPv4(127, 0, 0, 1)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return startBackend(t, name, &tls.Config{Certificates: []tls.Certificate{cert}})
}

// startBackend starts a backend with tlsConfig (nil: httptest's own
// certificate, the one newEnv trusts).
func startBackend(t *testing.T, name string, tlsConfig *tls.Config) *backend {
	b := &backend{name: name, quit: make(chan struct{})}
	b.ready.Store(true)
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !b.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		b.oks.Add(1)
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
	b.srv = httptest.NewUnstartedServer(mux)
	b.srv.TLS = tlsConfig
	b.srv.StartTLS()
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
		StateFile: filepath.Join(e.dir, "lb-servers.json"),
		Log:       slog.New(slog.NewTextHandler(e.t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

// waitHealthy waits until the balancer has recorded a healthy check of s:
// its checks of one server follow each other, so once s answered a second
// check the first one was recorded.
func (e *env) waitHealthy(s *backend, within time.Duration) {
	e.t.Helper()
	testenv.WaitUntil(e.t, within, s.name+" checked healthy twice", func() bool { return s.oks.Load() >= 2 })
}

// start runs b until Stop or the end of the test.
func (e *env) start(b *Balancer) *testenv.Running { return testenv.Start(e.t, b.Run) }

func (e *env) waitReady(r *testenv.Running, within time.Duration) {
	e.t.Helper()
	r.WaitReady(within)
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

// waitFile polls until the stored list holds exactly want, in any order.
func waitFile(t *testing.T, path string, want ...string) {
	t.Helper()
	want = slices.Sorted(slices.Values(want))
	testenv.WaitFor(t, 5*time.Second, "the stored servers", func() error {
		got, _, err := loadServers(path)
		if err != nil || !slices.Equal(slices.Sorted(slices.Values(got)), want) {
			return fmt.Errorf("stored servers = %v (%v), want %v", got, err, want)
		}
		return nil
	})
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
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
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

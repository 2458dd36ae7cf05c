package tunnel

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"

	"github.com/gorilla/websocket"

	"github.com/kedge/kedge/server/pki"
	servertunnel "github.com/kedge/kedge/server/tunnel"
)

// cluster is a tunnel server (websocket endpoint on a TLS test server that
// requests client certificates, like the supervisor, and the CONNECT proxy
// on loopback) with the server PKI in a temp dir.
type cluster struct {
	files  *pki.Files
	ca     *pki.CA
	dir    string
	srv    *servertunnel.Server
	public *httptest.Server
	proxy  string
	logs   *logBuffer
}

func newCluster(t *testing.T, nodes ...*corev1.Node) *cluster {
	t.Helper()
	dir := t.TempDir()
	files, err := pki.Ensure(pki.Request{Dir: dir, APIServerDNS: []string{"localhost"},
		APIServerIPs: []net.IP{net.ParseIP("127.0.0.1")}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.LoadCA(files.ClientCA, files.ClientCAKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{files: files, ca: ca, dir: dir, proxy: l.Addr().String(), logs: &logBuffer{}}
	c.srv = &servertunnel.Server{ClientCA: pool, Listener: l, CertFile: files.ServingCert, KeyFile: files.ServingKey,
		Client: fake.NewClientset(objects(nodes)...), Log: slog.New(slog.NewTextHandler(c.logs, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() { done <- c.srv.Run(ctx, func() { close(ready) }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("tunnel server: %v", err)
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("tunnel server: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("tunnel server not ready")
	}
	cert, err := tls.LoadX509KeyPair(files.ServingCert, files.ServingKey)
	if err != nil {
		t.Fatal(err)
	}
	c.public = httptest.NewUnstartedServer(c.srv)
	c.public.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequestClientCert}
	c.public.StartTLS()
	t.Cleanup(c.public.Close)
	return c
}

func objects(nodes []*corev1.Node) []runtime.Object {
	var out []runtime.Object
	for _, n := range nodes {
		out = append(out, n)
	}
	return out
}

// clientCert issues a client certificate for cn/org into the cluster's dir.
func (c *cluster) clientCert(t *testing.T, cn string, org ...string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := c.ca.Sign(pki.Leaf{CommonName: cn, Organization: org, Usages: pki.ClientAuth}, key.Public())
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := certutil.EncodeCertificates(cert)
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(c.dir, strings.NewReplacer(":", "-").Replace(cn+"_"+strings.Join(org, ",")))
	if err := os.WriteFile(base+".crt", certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(base+".key", keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return base + ".crt", base + ".key"
}

// startAgent runs a tunnel client for node until the returned stop is called.
func (c *cluster) startAgent(t *testing.T, node string, allow *Allow) (stop func()) {
	t.Helper()
	certFile, keyFile := c.clientCert(t, "system:node:"+node, "system:nodes")
	client := &Client{Server: c.public.URL, CertFile: certFile, KeyFile: keyFile, CAFile: c.files.ServerCA,
		Allow: allow, Log: slog.New(slog.NewTextHandler(c.logs, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() { done <- client.Run(ctx, func() { close(ready) }) }()
	select {
	case <-ready: // at once, whether or not the server answers
	case <-time.After(time.Second):
		t.Fatal("the tunnel client is not ready at once")
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("tunnel client: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func (c *cluster) waitSessions(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Join(c.srv.Sessions(), ",") != want {
		if time.Now().After(deadline) {
			t.Fatalf("sessions = %v, want %q; logs:\n%s", c.srv.Sessions(), want, c.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// connect opens a CONNECT tunnel to target through the egress proxy as the
// kube-apiserver (or with the given certificate) and checks that an echo
// round trip works; it returns the proxy's status and whether it echoed.
func (c *cluster) connect(t *testing.T, certFile, keyFile, target string) (int, bool) {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(c.files.ServerCA)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	conn, err := tls.Dial("tcp", c.proxy, &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: roots})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", target)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("CONNECT %s: %v", target, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, false
	}
	if _, err := io.WriteString(conn, "ping\n"); err != nil {
		return resp.StatusCode, false
	}
	line, err := br.ReadString('\n')
	return resp.StatusCode, err == nil && line == "ping\n"
}

// echo serves an echo on a loopback address and returns host:port.
func echo(t *testing.T, host string) string {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return l.Addr().String()
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, _ := net.SplitHostPort(addr)
	var n int
	fmt.Sscan(p, &n)
	return n
}

type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) count(s string) int { return strings.Count(l.String(), s) }

func edgeNode() *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "edge"},
		Spec:   corev1.NodeSpec{PodCIDR: "127.77.0.0/24", PodCIDRs: []string{"127.77.0.0/24"}},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}}}
}

// TestConnectRouting: the egress proxy dials a node's IP and pod CIDR
// through the node's tunnel while it has one and directly otherwise; the
// agent dials only its kubelet port and its pods, and a refused dial fails
// only that connection.
func TestConnectRouting(t *testing.T) {
	c := newCluster(t, edgeNode())
	kubelet := echo(t, "127.0.0.1")
	other := echo(t, "127.0.0.1") // the node's IP, not the kubelet port
	pod := echo(t, "127.77.0.5")  // inside the node's pod CIDR
	stray := echo(t, "127.0.0.3") // no node's
	api := func(target string) (int, bool) {
		return c.connect(t, c.files.KubeletClientCert, c.files.KubeletKey, target)
	}

	if code, ok := api(other); code != http.StatusOK || !ok {
		t.Fatalf("without a tunnel, a direct dial to %s: status %d, echoed %v", other, code, ok)
	}
	allow := &Allow{NodeIP: net.ParseIP("127.0.0.1"), KubeletPort: portOf(t, kubelet),
		LocalAddrs: func() ([]net.Addr, error) { return nil, nil }}
	_, cidr, _ := net.ParseCIDR("127.77.0.0/24")
	allow.SetPodCIDRs(cidr)
	stop := c.startAgent(t, "edge", allow)
	c.waitSessions(t, "edge")

	for _, target := range []string{kubelet, pod, stray} {
		if code, ok := api(target); code != http.StatusOK || !ok {
			t.Errorf("CONNECT %s: status %d, echoed %v; logs:\n%s", target, code, ok, c.logs)
		}
	}
	// Reachable directly, but the node has a tunnel, so it goes through it
	// and the agent refuses it.
	if _, ok := api(other); ok {
		t.Errorf("CONNECT %s (the node's IP, not its kubelet port) went through", other)
	}
	if code, ok := api(kubelet); code != http.StatusOK || !ok {
		t.Errorf("the kubelet after a refused dial: status %d, echoed %v", code, ok)
	}
	if n := c.logs.count("tunnel session started"); n != 1 {
		t.Errorf("%d sessions started, want 1 (a refusal must not end the session); logs:\n%s", n, c.logs)
	}
	// Only the apiserver may use the proxy.
	adminCert, adminKey := c.clientCert(t, "system:admin", "system:masters")
	nodeCert, nodeKey := c.clientCert(t, "system:node:edge", "system:nodes")
	for _, pair := range [][2]string{{adminCert, adminKey}, {nodeCert, nodeKey}} {
		if code, _ := c.connect(t, pair[0], pair[1], kubelet); code != http.StatusForbidden {
			t.Errorf("CONNECT as %s: status %d, want 403", filepath.Base(pair[0]), code)
		}
	}

	// Once the tunnel is gone (and not back within the grace period), the
	// proxy dials directly again.
	stop()
	c.waitSessions(t, "")
	if code, ok := api(other); code != http.StatusOK || !ok {
		t.Fatalf("after the tunnel ended, a direct dial to %s: status %d, echoed %v", other, code, ok)
	}
}

// TestEndpointRefusesNonNodes: the websocket endpoint answers 401 without a
// verified client certificate and 403 for one that is not a node's, before
// any upgrade.
func TestEndpointRefusesNonNodes(t *testing.T) {
	c := newCluster(t)
	other := newCluster(t) // another cluster's CA
	caPEM, _ := os.ReadFile(c.files.ServerCA)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	get := func(certFile, keyFile string, upgrade bool) int {
		cfg := &tls.Config{RootCAs: roots}
		if certFile != "" {
			cert, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 5 * time.Second}
		defer hc.CloseIdleConnections()
		req, _ := http.NewRequest(http.MethodGet, c.public.URL+"/v1-kedge/connect", nil)
		if upgrade {
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "websocket")
			req.Header.Set("Sec-WebSocket-Version", "13")
			req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	admin, adminKey := c.clientCert(t, "system:admin", "system:masters")
	noGroup, noGroupKey := c.clientCert(t, "system:node:edge")
	foreign, foreignKey := other.clientCert(t, "system:node:edge", "system:nodes")
	node, nodeKey := c.clientCert(t, "system:node:edge", "system:nodes")
	for _, tc := range []struct {
		name, cert, key string
		want            int
	}{
		{"no certificate", "", "", http.StatusUnauthorized},
		{"another CA", foreign, foreignKey, http.StatusUnauthorized},
		{"admin", admin, adminKey, http.StatusForbidden},
		{"node name without the nodes group", noGroup, noGroupKey, http.StatusForbidden},
		{"the apiserver", c.files.KubeletClientCert, c.files.KubeletKey, http.StatusForbidden},
	} {
		if got := get(tc.cert, tc.key, true); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
	if got := get(node, nodeKey, false); got != http.StatusBadRequest {
		t.Errorf("a node without a websocket upgrade: status %d, want 400", got)
	}
	if s := c.srv.Sessions(); len(s) != 0 {
		t.Errorf("sessions after refusals: %v", s)
	}
}

// TestNewSessionReplacesOld: a node's second session closes its first.
func TestNewSessionReplacesOld(t *testing.T) {
	c := newCluster(t, edgeNode())
	certFile, keyFile := c.clientCert(t, "system:node:edge", "system:nodes")
	client := &Client{Server: c.public.URL, CertFile: certFile, KeyFile: keyFile, CAFile: c.files.ServerCA}
	dial := func() *websocket.Conn {
		cfg, err := client.tlsConfig()
		if err != nil {
			t.Fatal(err)
		}
		u, _ := tunnelURL(c.public.URL)
		ws, _, err := (&websocket.Dialer{TLSClientConfig: cfg, HandshakeTimeout: 5 * time.Second}).Dial(u, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.Close() })
		return ws
	}
	first := dial()
	c.waitSessions(t, "edge")
	_ = dial()
	_ = first.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := first.ReadMessage(); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("the first session was not closed by the second")
			}
			break
		}
	}
	c.waitSessions(t, "edge")
	if n := c.logs.count("a new tunnel session replaces the old one"); n != 1 {
		t.Errorf("replacements logged: %d, want 1; logs:\n%s", n, c.logs)
	}
}

// TestClientReadyWithoutServer: an unreachable server does not hold up the
// agent, and the client stops at once when cancelled.
func TestClientReadyWithoutServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	c := newCluster(t)
	certFile, keyFile := c.clientCert(t, "system:node:edge", "system:nodes")
	client := &Client{Server: "https://" + addr, CertFile: certFile, KeyFile: keyFile, CAFile: c.files.ServerCA,
		Allow: &Allow{}, Log: slog.New(slog.NewTextHandler(c.logs, nil))}
	ctx, cancel := context.WithCancel(t.Context())
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() { done <- client.Run(ctx, func() { close(ready) }) }()
	select {
	case <-ready:
	case <-time.After(time.Second):
		t.Fatal("not ready at once")
	}
	deadline := time.Now().Add(5 * time.Second)
	for c.logs.count("cannot open the tunnel") == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no failed attempt logged:\n%s", c.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

package tunnel

import (
	"bufio"
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
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"

	"github.com/kedge/kedge/scripts/testenv"
	"github.com/kedge/kedge/server/pki"
	servertunnel "github.com/kedge/kedge/server/tunnel"
)

// cluster is a tunnel server (websocket endpoint on a TLS test server that
// requests client certificates, like the supervisor, and the CONNECT proxy
// on a unix socket) with the server PKI in a temp dir.
type cluster struct {
	files  *pki.Files
	ca     *pki.CA
	dir    string
	srv    *servertunnel.Server
	public *httptest.Server
	proxy  string
	logs   *testenv.Output
	stop   func() // stops srv (Run); called by cleanup too
	// dials counts the requests to the websocket endpoint: each is an
	// agent's attempt to open a session.
	dials atomic.Int64
}

// waitDial waits until the endpoint received more than after requests.
func (c *cluster) waitDial(t *testing.T, after int64, within time.Duration) {
	t.Helper()
	testenv.WaitUntil(t, within, "a new attempt to open a session", func() bool { return c.dials.Load() > after })
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
	return startCluster(t, dir, files, ca, nodes)
}

// sibling is another server of the same cluster (same PKI and nodes), as
// an HA cluster's servers are, with its own tunnel server and endpoint.
func (c *cluster) sibling(t *testing.T, nodes ...*corev1.Node) *cluster {
	t.Helper()
	return startCluster(t, c.dir, c.files, c.ca, nodes)
}

func startCluster(t *testing.T, dir string, files *pki.Files, ca *pki.CA, nodes []*corev1.Node) *cluster {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	socket := filepath.Join(t.TempDir(), "egress.sock")
	l, err := servertunnel.ListenEgress(socket)
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{files: files, ca: ca, dir: dir, proxy: socket, logs: &testenv.Output{}}
	c.srv = &servertunnel.Server{ClientCA: pool, Listener: l,
		Client: fake.NewClientset(objects(nodes)...), Log: slog.New(slog.NewTextHandler(c.logs, nil))}
	egress := testenv.Start(t, c.srv.Egress().Run)
	r := testenv.Start(t, c.srv.Run)
	c.stop = func() {
		if err := r.Stop(); err != nil {
			t.Errorf("tunnel server: %v", err)
		}
		if err := egress.Stop(); err != nil {
			t.Errorf("egress proxy: %v", err)
		}
	}
	egress.WaitReady(10 * time.Second)
	r.WaitReady(10 * time.Second)
	cert, err := tls.LoadX509KeyPair(files.ServingCert, files.ServingKey)
	if err != nil {
		t.Fatal(err)
	}
	c.public = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.dials.Add(1)
		c.srv.ServeHTTP(w, r)
	}))
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
	r := testenv.Start(t, client.Run)
	r.WaitReady(time.Second) // at once, whether or not the server answers
	return func() {
		if err := r.Stop(); err != nil {
			t.Errorf("tunnel client: %v", err)
		}
	}
}

func (c *cluster) waitSessions(t *testing.T, want string) {
	t.Helper()
	testenv.WaitFor(t, 10*time.Second, "the sessions", func() error {
		if got := strings.Join(c.srv.Sessions(), ","); got != want {
			return fmt.Errorf("sessions = %q, want %q; logs:\n%s", got, want, c.logs)
		}
		return nil
	})
}

// connect opens a CONNECT tunnel to target through the egress proxy's
// socket, as the kube-apiserver does, and checks that an echo round trip
// works; it returns the proxy's status and whether it echoed.
func (c *cluster) connect(t *testing.T, target string) (int, bool) {
	t.Helper()
	conn, err := net.Dial("unix", c.proxy)
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

// count counts the occurrences of s in what was logged to out.
func count(out *testenv.Output, s string) int { return strings.Count(out.String(), s) }

// dialEndpoint opens a session as the agent does, with certFile and
// keyFile. It returns the connection (nil if refused) and the HTTP status
// of the handshake; t.Cleanup closes the connection.
func (c *cluster) dialEndpoint(t *testing.T, certFile, keyFile string) (*websocket.Conn, int) {
	t.Helper()
	client := &Client{Server: c.public.URL, CertFile: certFile, KeyFile: keyFile, CAFile: c.files.ServerCA}
	cfg, err := client.tlsConfig()
	if err != nil {
		t.Fatal(err)
	}
	u, _ := tunnelURL(c.public.URL)
	ws, resp, err := (&websocket.Dialer{TLSClientConfig: cfg, HandshakeTimeout: 5 * time.Second}).Dial(u, nil)
	if resp == nil {
		t.Fatalf("dial the tunnel endpoint: %v", err)
	}
	if ws != nil {
		t.Cleanup(func() { ws.Close() })
	}
	return ws, resp.StatusCode
}

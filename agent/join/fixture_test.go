package join

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/kedge/kedge/server/pki"
)

// cluster is a server PKI made by server/pki, issued at now.
type cluster struct {
	files  *pki.Files
	caPEM  []byte // the server CA bundle the token pins
	client *pki.CA
}

func newCluster(t *testing.T, now time.Time) *cluster {
	t.Helper()
	files, err := pki.Ensure(pki.Request{Dir: t.TempDir(), APIServerIPs: []net.IP{net.ParseIP("127.0.0.1")}, Now: now},
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(files.ServerCA)
	if err != nil {
		t.Fatal(err)
	}
	client, err := pki.LoadCA(files.ClientCA, files.ClientCAKey)
	if err != nil {
		t.Fatal(err)
	}
	return &cluster{files: files, caPEM: ca, client: client}
}

// serve starts a TLS server for h presenting c's apiserver serving
// certificate on 127.0.0.1, and returns its URL.
func (c *cluster) serve(t *testing.T, h http.Handler) string {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(c.files.ServingCert, c.files.ServingKey)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL
}

// sign issues a client certificate of c's client CA for the public key of
// the PEM CSR, the way the join API does: the subject is the server's.
func (c *cluster) sign(csrPEM string, cn string) (string, error) {
	block, _ := pem.Decode([]byte(csrPEM))
	if block == nil {
		return "", errors.New("not a PEM CSR")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return "", err
	}
	if err := csr.CheckSignature(); err != nil {
		return "", err
	}
	cert, err := c.client.Sign(pki.Leaf{CommonName: cn, Usages: pki.ClientAuth}, csr.PublicKey)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})), nil
}

// Package join is the agent's side of joining a kedge server: fetch and pin
// the server CA with the token's hash, then request the node's certificates
// over verified TLS. Private keys are generated here and never sent.
package join

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"

	"github.com/kedge/kedge/shared/joinapi"
	"github.com/kedge/kedge/shared/token"
)

// ErrCAMismatch means the server's CA is not the one the token pins.
var ErrCAMismatch = errors.New("the server's CA does not match the CA hash in the token; refusing to trust it")

const requestTimeout = 15 * time.Second

// FetchCA returns the server's CA bundle after checking it against the
// token's CA hash and checking that the server's own certificate chains to
// it. Nothing secret is sent before both checks pass. A token without a CA
// hash cannot pin anything and is refused.
func FetchCA(ctx context.Context, server string, tok token.Token) ([]byte, error) {
	if tok.CAHash == "" {
		return nil, errors.New("the token has no CA hash (use the full K10... token from the server's token file)")
	}
	var peer []*x509.Certificate
	insecure := &http.Client{
		Timeout: requestTimeout,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{
			InsecureSkipVerify: true, // verified below against the pinned hash
			VerifyConnection: func(cs tls.ConnectionState) error {
				peer = cs.PeerCertificates
				return nil
			},
		}},
	}
	defer insecure.CloseIdleConnections()
	body, err := get(ctx, insecure, strings.TrimRight(server, "/")+joinapi.CACertsPath)
	if err != nil {
		return nil, fmt.Errorf("fetch CA from %s: %w", server, err)
	}
	if token.CAHash(body) != tok.CAHash {
		return nil, ErrCAMismatch
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(body) || len(peer) == 0 {
		return nil, errors.New("the server sent no usable CA bundle or certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range peer[1:] {
		inter.AddCert(c)
	}
	if _, err := peer[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter}); err != nil {
		return nil, fmt.Errorf("the server's certificate is not signed by the pinned CA: %w", err)
	}
	return body, nil
}

// Node is who is joining.
type Node struct {
	Name     string
	Password string
	// Addresses are IPs and host names for the kubelet serving certificate.
	Addresses []string
}

// Certs are a node's credentials, all PEM.
type Certs struct {
	KubeletClientCert, KubeletClientKey   []byte
	KubeletServingCert, KubeletServingKey []byte
	KubeProxyCert, KubeProxyKey           []byte
	ServerCA, ClientCA                    []byte
	Cluster                               joinapi.Cluster
}

// RequestCerts asks the server, trusted through ca, for node's certificates.
func RequestCerts(ctx context.Context, server string, ca []byte, tok token.Token, node Node) (*Certs, error) {
	out := &Certs{}
	req := joinapi.NodeCertsRequest{NodeName: node.Name, NodePassword: node.Password, Addresses: node.Addresses}
	var err error
	if req.KubeletClientCSR, out.KubeletClientKey, err = newCSR(); err != nil {
		return nil, err
	}
	if req.KubeletServingCSR, out.KubeletServingKey, err = newCSR(); err != nil {
		return nil, err
	}
	if req.KubeProxyCSR, out.KubeProxyKey, err = newCSR(); err != nil {
		return nil, err
	}
	user := tok.Username
	if user == "" {
		user = token.NodeUser
	}
	status, data, err := PostPinned(ctx, server, joinapi.NodeCertsPath, ca, user, tok.Secret, req, requestTimeout)
	if err != nil {
		return nil, fmt.Errorf("request node certificates: %w", err)
	}
	if status == http.StatusUnauthorized {
		if tok.IsBootstrap() {
			return nil, fmt.Errorf("the server rejected bootstrap token %s (unknown, expired or deleted; make a new one with kedge token create)", tok.BootstrapID())
		}
		return nil, errors.New("the server rejected the token")
	}
	return out, out.fill(status, data, ca, node)
}

// fill takes the certificates from the server's answer.
func (out *Certs) fill(status int, data, ca []byte, node Node) error {
	if status != http.StatusOK {
		return fmt.Errorf("the server refused to join node %q: %s", node.Name, strings.TrimSpace(string(data)))
	}
	var r joinapi.NodeCertsResponse
	if err := json.Unmarshal(data, &r); err != nil {
		return fmt.Errorf("decode node certificates: %w", err)
	}
	out.KubeletClientCert, out.KubeletServingCert, out.KubeProxyCert = []byte(r.KubeletClientCert), []byte(r.KubeletServingCert), []byte(r.KubeProxyCert)
	out.ServerCA, out.ClientCA = []byte(r.ServerCA), []byte(r.ClientCA)
	out.Cluster = r.Cluster
	if !bytes.Equal(out.ServerCA, ca) {
		return errors.New("the server answered with a CA other than the pinned one")
	}
	return nil
}

func newCSR() (string, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", nil, err
	}
	return csrFor(key)
}

// csrFor returns a CSR for key and key in PEM.
func csrFor(key crypto.Signer) (string, []byte, error) {
	csr, err := certutil.MakeCSR(key, &pkix.Name{CommonName: "kedge-node"}, nil, nil)
	if err != nil {
		return "", nil, err
	}
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return "", nil, err
	}
	return string(csr), keyPEM, nil
}

func get(ctx context.Context, c *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
}

// Package join serves the join API (see joinapi): the CA bundle for pinning,
// node certificates for agents that present a valid token (or, to renew,
// their current kubelet client certificate) and their node password, and what a joining server shares with the others (CAs, cluster
// settings, etcd membership) for servers that present the server token.
package join

import (
	"crypto/subtle"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	certutil "k8s.io/client-go/util/cert"

	"github.com/kedge/kedge/server/clientcert"
	"github.com/kedge/kedge/server/join/nodepassword"
	"github.com/kedge/kedge/server/pki"
	"github.com/kedge/kedge/server/token/bootstrap"
	"github.com/kedge/kedge/shared/joinapi"
	"github.com/kedge/kedge/shared/token"
)

const (
	// maxBody bounds a join request.
	maxBody = 64 << 10

	nodeUserPrefix = "system:node:"
	nodesGroup     = "system:nodes"
)

// Handler serves /cacerts, /v1-kedge/node-certs and /v1-kedge/server-join. It is safe for
// concurrent use.
type Handler struct {
	// CABundle is the server CA (PEM) returned by /cacerts.
	CABundle []byte
	ServerCA *pki.CA // signs kubelet serving certificates
	ClientCA *pki.CA // signs client certificates
	// ServerSecret returns the server token's secret in force now (it
	// changes with kedge token rotate); that token may join servers and
	// agents. AgentToken (optional) joins agents only.
	ServerSecret func() string
	AgentToken   token.Token
	// Bootstrap checks bootstrap tokens (user token.BootstrapUser), which
	// join agents only; nil refuses them.
	Bootstrap *bootstrap.Authenticator
	Passwords *nodepassword.Store
	// Cluster is returned to joining nodes.
	Cluster joinapi.Cluster
	// TLSDir holds the CAs that joining servers get (pki.SharedFiles).
	TLSDir string
	// Members adds joining servers to the embedded etcd; nil when this
	// server does not run one (then servers cannot join it).
	Members Members
	Log     *slog.Logger
}

// ServeHTTP routes the join API paths.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case joinapi.CACertsPath:
		if r.Method != http.MethodGet {
			http.Error(w, "use GET", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/x-pem-file")
		_, _ = w.Write(h.CABundle)
	case joinapi.NodeCertsPath:
		h.nodeCerts(w, r)
	case joinapi.ServerJoinPath:
		h.serverJoin(w, r)
	default:
		http.NotFound(w, r)
	}
}

// httpError is an error with the status to answer.
type httpError struct {
	status int
	msg    string
	// cause, if set, is logged instead of msg but not answered (it says
	// more than an unauthenticated client should learn).
	cause error
}

func (e *httpError) Error() string { return e.msg }

func fail(status int, format string, args ...any) error {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

// reason is what the log says about a refusal.
func reason(err error) error {
	var he *httpError
	if errors.As(err, &he) && he.cause != nil {
		return he.cause
	}
	return err
}

func (h *Handler) nodeCerts(w http.ResponseWriter, r *http.Request) {
	resp, err := h.issue(r)
	if err != nil {
		status := http.StatusInternalServerError
		var he *httpError
		if errors.As(err, &he) {
			status = he.status
		}
		if status >= 500 {
			h.Log.Error("node join failed", "error", err)
		} else {
			h.Log.Warn("node join refused", "remote", r.RemoteAddr, "reason", reason(err))
		}
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="kedge"`)
		}
		http.Error(w, err.Error(), status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

func (h *Handler) issue(r *http.Request) (*joinapi.NodeCertsResponse, error) {
	if r.Method != http.MethodPost {
		return nil, fail(http.StatusMethodNotAllowed, "use POST")
	}
	// Without a token, a node may renew with its current certificate.
	authErr := h.authorize(r)
	var he *httpError
	renewal := r.TLS != nil && len(r.TLS.PeerCertificates) > 0
	if authErr != nil && (!renewal || !errors.As(authErr, &he) || he.status != http.StatusUnauthorized) {
		return nil, authErr
	}
	var req joinapi.NodeCertsRequest
	if err := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBody)).Decode(&req); err != nil {
		return nil, fail(http.StatusBadRequest, "malformed request: %v", err)
	}
	if errs := validation.IsDNS1123Subdomain(req.NodeName); len(errs) > 0 {
		return nil, fail(http.StatusBadRequest, "node name %q: %s", req.NodeName, strings.Join(errs, "; "))
	}
	byToken := authErr == nil
	if !byToken {
		if err := h.sameNode(r, req.NodeName); err != nil {
			return nil, err
		}
	}
	if req.NodePassword == "" {
		return nil, fail(http.StatusBadRequest, "node password is empty")
	}
	var ips []net.IP
	var names []string
	for _, a := range req.Addresses {
		if ip := net.ParseIP(a); ip != nil {
			ips = append(ips, ip)
		} else if len(validation.IsDNS1123Subdomain(a)) == 0 {
			names = append(names, a)
		} else {
			return nil, fail(http.StatusBadRequest, "address %q is neither an IP nor a DNS name", a)
		}
	}
	clientKey, err := csrPublicKey(req.KubeletClientCSR)
	if err != nil {
		return nil, fail(http.StatusBadRequest, "kubelet client CSR: %v", err)
	}
	servingKey, err := csrPublicKey(req.KubeletServingCSR)
	if err != nil {
		return nil, fail(http.StatusBadRequest, "kubelet serving CSR: %v", err)
	}
	proxyKey, err := csrPublicKey(req.KubeProxyCSR)
	if err != nil {
		return nil, fail(http.StatusBadRequest, "kube-proxy CSR: %v", err)
	}
	// Checks that read nothing from the datastore are done; now the node
	// password, recorded only for a new node.
	if err := h.Passwords.Verify(r.Context(), req.NodeName, req.NodePassword, true); err != nil {
		if errors.Is(err, nodepassword.ErrMismatch) {
			return nil, fail(http.StatusForbidden, "node %q: %v", req.NodeName, err)
		}
		return nil, err
	}

	nodeUser := nodeUserPrefix + req.NodeName
	client, err := h.ClientCA.Sign(pki.Leaf{CommonName: nodeUser, Organization: []string{nodesGroup}, Usages: pki.ClientAuth}, clientKey)
	if err != nil {
		return nil, err
	}
	serving, err := h.ServerCA.Sign(pki.Leaf{CommonName: nodeUser, Organization: []string{nodesGroup},
		DNSNames: append([]string{req.NodeName}, names...), IPs: ips, Usages: pki.ServerAuth}, servingKey)
	if err != nil {
		return nil, err
	}
	proxy, err := h.ClientCA.Sign(pki.Leaf{CommonName: "system:kube-proxy", Usages: pki.ClientAuth}, proxyKey)
	if err != nil {
		return nil, err
	}
	h.Log.Info("issued node certificates", "node", req.NodeName, "renewal", !byToken)
	clientCA, err := certutil.EncodeCertificates(h.ClientCA.Cert)
	if err != nil {
		return nil, err
	}
	return &joinapi.NodeCertsResponse{
		KubeletClientCert:  encode(client),
		KubeletServingCert: encode(serving),
		KubeProxyCert:      encode(proxy),
		ServerCA:           string(h.CABundle),
		ClientCA:           string(clientCA),
		Cluster:            h.Cluster,
	}, nil
}

// sameNode accepts a renewal without a token: the request carries a valid
// kubelet client certificate of the node it asks certificates for. A
// certificate that has expired is refused (401); the node joins again with
// its token.
func (h *Handler) sameNode(r *http.Request, node string) error {
	cert, err := clientcert.Verify(r, h.clientCAPool())
	if err != nil {
		return fail(http.StatusUnauthorized, "%v", err)
	}
	if cert.Subject.CommonName != nodeUserPrefix+node || !slices.Contains(cert.Subject.Organization, nodesGroup) {
		return fail(http.StatusForbidden, "%q may not renew the certificates of node %q", cert.Subject.CommonName, node)
	}
	return nil
}

func (h *Handler) clientCAPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(h.ClientCA.Cert)
	return pool
}

// authorize lets a node join with the Basic credentials: the server token
// (user "server" or "node"), the agent token (user "node") or a bootstrap
// token that is valid now (user "bootstrap", password "<id>.<secret>").
// It returns a 401 httpError for any other, or an error when the API
// cannot tell.
func (h *Handler) authorize(r *http.Request) error {
	user, secret, ok := r.BasicAuth()
	switch {
	case !ok:
	case (user == token.ServerUser || user == token.NodeUser) && equal(secret, h.ServerSecret()):
		return nil
	case user == token.NodeUser && h.AgentToken.Secret != "" && equal(secret, h.AgentToken.Secret):
		return nil
	case user == token.BootstrapUser && h.Bootstrap != nil:
		err := h.Bootstrap.Authenticate(r.Context(), secret)
		if errors.Is(err, bootstrap.ErrRejected) {
			// The client learns no more than for any wrong token (not
			// whether the id exists).
			return &httpError{status: http.StatusUnauthorized, msg: "token rejected", cause: err}
		}
		if err != nil {
			return err
		}
		h.Log.Info("node joins with a bootstrap token", "token_id", token.Token{Username: user, Secret: secret}.BootstrapID())
		return nil
	}
	return fail(http.StatusUnauthorized, "token rejected")
}

func equal(a, b string) bool {
	return b != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func csrPublicKey(pemCSR string) (any, error) {
	block, _ := pem.Decode([]byte(pemCSR))
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("not a PEM certificate request")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, err
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	return csr.PublicKey, nil
}

func encode(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

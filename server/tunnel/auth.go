package tunnel

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

const (
	nodeUserPrefix = "system:node:"
	nodesGroup     = "system:nodes"
	// APIServerUser is the identity (the kube-apiserver's kubelet client
	// certificate) that may use the CONNECT proxy.
	APIServerUser = "system:kube-apiserver"
)

// authError is a refusal with the HTTP status to answer.
type authError struct {
	status int
	msg    string
}

func (e *authError) Error() string { return e.msg }

// verifiedClient returns the request's client certificate after verifying
// it (and the intermediates sent with it) against roots for client auth.
// TLS listeners that only request client certificates leave that to us.
func verifiedClient(r *http.Request, roots *x509.CertPool) (*x509.Certificate, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil, &authError{http.StatusUnauthorized, "a client certificate is required"}
	}
	leaf := r.TLS.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range r.TLS.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, &authError{http.StatusUnauthorized, fmt.Sprintf("client certificate: %v", err)}
	}
	return leaf, nil
}

// nodeIdentity returns the node whose kubelet client certificate the
// request carries: CN system:node:<name>, O system:nodes, signed by roots.
func nodeIdentity(r *http.Request, roots *x509.CertPool) (string, error) {
	cert, err := verifiedClient(r, roots)
	if err != nil {
		return "", err
	}
	name, ok := strings.CutPrefix(cert.Subject.CommonName, nodeUserPrefix)
	if !ok || !slices.Contains(cert.Subject.Organization, nodesGroup) {
		return "", &authError{http.StatusForbidden, fmt.Sprintf("%q is not a node (want CN %s<name>, O %s)",
			cert.Subject.CommonName, nodeUserPrefix, nodesGroup)}
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return "", &authError{http.StatusForbidden, fmt.Sprintf("node name %q: %s", name, strings.Join(errs, "; "))}
	}
	return name, nil
}

// statusOf is the HTTP status for err.
func statusOf(err error) int {
	var ae *authError
	if errors.As(err, &ae) {
		return ae.status
	}
	return http.StatusInternalServerError
}

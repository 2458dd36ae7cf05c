// Package clientcert checks the client certificate of a request to a TLS
// listener that only requests one (tls.RequestClientCert, as the
// supervisor's port does, so that token and anonymous callers get through
// too): each handler that needs a certificate verifies it against its own
// CA here.
package clientcert

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
)

// ErrMissing is returned for a request without a client certificate.
var ErrMissing = errors.New("a client certificate is required")

// Verify returns the request's client certificate after verifying it, with
// the intermediates sent along, against roots for client auth. The error is
// ErrMissing, or wraps the x509 verification error. Safe for concurrent use.
func Verify(r *http.Request, roots *x509.CertPool) (*x509.Certificate, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil, ErrMissing
	}
	leaf := r.TLS.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range r.TLS.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, fmt.Errorf("client certificate: %w", err)
	}
	return leaf, nil
}

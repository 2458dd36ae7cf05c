package tunnel

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kedge/kedge/server/clientcert"
)

const (
	nodeUserPrefix = "system:node:"
	nodesGroup     = "system:nodes"
)

// authError is a refusal with the HTTP status to answer.
type authError struct {
	status int
	msg    string
}

func (e *authError) Error() string { return e.msg }

// verifiedClient returns the request's client certificate, verified by
// clientcert.Verify; any failure is a 401 authError.
func verifiedClient(r *http.Request, roots *x509.CertPool) (*x509.Certificate, error) {
	cert, err := clientcert.Verify(r, roots)
	if err != nil {
		return nil, &authError{http.StatusUnauthorized, err.Error()}
	}
	return cert, nil
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

package join

import (
	"context"
	"crypto"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"

	"github.com/kedge/kedge/shared/certlife"
	"github.com/kedge/kedge/shared/joinapi"
)

// ErrIdentityRefused means the server did not accept the node's current
// kubelet client certificate (expired, say): the node must join again with
// a token.
var ErrIdentityRefused = errors.New("the server refused the node's current certificate")

// Expiring is a node certificate in the credentials directory.
type Expiring struct {
	File                string
	NotBefore, NotAfter time.Time
	// Due says it is due for renewal (certlife.Due).
	Due bool
}

// NodeCertificates returns the node's certificates in dir with their
// expiry, in a fixed order.
func NodeCertificates(dir string, now time.Time) ([]Expiring, error) {
	var out []Expiring
	for _, name := range []string{KubeletClientCert, KubeletServingCert, KubeProxyCert} {
		certs, err := certutil.CertsFromFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		out = append(out, Expiring{File: name, NotBefore: certs[0].NotBefore, NotAfter: certs[0].NotAfter, Due: certlife.Due(certs[0], now)})
	}
	return out, nil
}

// Renew asks the server for new certificates for the keys in dir,
// authenticating with the node's current kubelet client certificate (no
// token), and returns them with the same keys; the caller saves them. A
// refusal of the certificate is ErrIdentityRefused.
func Renew(ctx context.Context, server, dir string, node Node) (*Certs, error) {
	ca, err := os.ReadFile(filepath.Join(dir, ServerCA))
	if err != nil {
		return nil, err
	}
	identity, err := tls.LoadX509KeyPair(filepath.Join(dir, KubeletClientCert), filepath.Join(dir, KubeletClientKey))
	if err != nil {
		return nil, fmt.Errorf("the node's client certificate: %w", err)
	}
	out := &Certs{}
	req := joinapi.NodeCertsRequest{NodeName: node.Name, NodePassword: node.Password, Addresses: node.Addresses}
	for _, k := range []struct {
		file string
		csr  *string
		key  *[]byte
	}{
		{KubeletClientKey, &req.KubeletClientCSR, &out.KubeletClientKey},
		{KubeletServingKey, &req.KubeletServingCSR, &out.KubeletServingKey},
		{KubeProxyKey, &req.KubeProxyCSR, &out.KubeProxyKey},
	} {
		key, err := loadKey(filepath.Join(dir, k.file))
		if err != nil {
			return nil, err
		}
		if *k.csr, *k.key, err = csrFor(key); err != nil {
			return nil, err
		}
	}
	status, data, err := postPinned(ctx, server, joinapi.NodeCertsPath, ca, &identity, nil, req, requestTimeout)
	if err != nil {
		return nil, fmt.Errorf("renew node certificates: %w", err)
	}
	if status == http.StatusUnauthorized {
		return nil, fmt.Errorf("%w: %s", ErrIdentityRefused, data)
	}
	return out, out.fill(status, data, ca, node)
}

func loadKey(path string) (crypto.Signer, error) {
	k, err := keyutil.PrivateKeyFromFile(path)
	if err != nil {
		return nil, err
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: not a signing key", path)
	}
	return signer, nil
}

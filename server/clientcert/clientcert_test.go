package clientcert

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// issuer is a test CA.
type issuer struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// issue signs a certificate for tmpl with parent, or self-signs it when
// parent is nil.
func issue(t *testing.T, parent *issuer, tmpl *x509.Certificate) *issuer {
	t.Helper()
	key := newKey(t)
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	}
	signer, signerKey := tmpl, crypto.Signer(key)
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, key.Public(), signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &issuer{cert: cert, key: key}
}

func ca(t *testing.T, parent *issuer, cn string) *issuer {
	return issue(t, parent, &x509.Certificate{Subject: pkix.Name{CommonName: cn}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature})
}

func leaf(t *testing.T, parent *issuer, cn string, usage x509.ExtKeyUsage) *x509.Certificate {
	return issue(t, parent, &x509.Certificate{Subject: pkix.Name{CommonName: cn},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}).cert
}

func TestVerify(t *testing.T) {
	root := ca(t, nil, "client-ca")
	inter := ca(t, root, "intermediate")
	other := ca(t, nil, "another-cluster")
	roots := x509.NewCertPool()
	roots.AddCert(root.cert)
	expired := issue(t, root, &x509.Certificate{Subject: pkix.Name{CommonName: "old"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}).cert

	for _, tc := range []struct {
		name    string
		chain   []*x509.Certificate // nil: no client certificate
		noTLS   bool
		wantCN  string
		missing bool
		reason  string // in the verification error
	}{
		{name: "client certificate of the CA", chain: []*x509.Certificate{leaf(t, root, "system:node:a", x509.ExtKeyUsageClientAuth)}, wantCN: "system:node:a"},
		{name: "through an intermediate sent along", chain: []*x509.Certificate{leaf(t, inter, "proxy", x509.ExtKeyUsageClientAuth), inter.cert}, wantCN: "proxy"},
		{name: "intermediate not sent", chain: []*x509.Certificate{leaf(t, inter, "proxy", x509.ExtKeyUsageClientAuth)}, reason: "unknown authority"},
		{name: "another CA", chain: []*x509.Certificate{leaf(t, other, "system:node:a", x509.ExtKeyUsageClientAuth)}, reason: "unknown authority"},
		{name: "serving certificate only", chain: []*x509.Certificate{leaf(t, root, "server", x509.ExtKeyUsageServerAuth)}, reason: "incompatible key usage"},
		{name: "expired", chain: []*x509.Certificate{expired}, reason: "expired"},
		{name: "no certificate", missing: true},
		{name: "not TLS", noTLS: true, missing: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "https://kedge/", nil)
			r.TLS = &tls.ConnectionState{PeerCertificates: tc.chain}
			if tc.noTLS {
				r.TLS = nil
			}
			got, err := Verify(r, roots)
			switch {
			case tc.wantCN != "":
				if err != nil || got.Subject.CommonName != tc.wantCN {
					t.Fatalf("Verify = %v, %v; want %s", got, err, tc.wantCN)
				}
			case tc.missing:
				if !errors.Is(err, ErrMissing) || got != nil {
					t.Fatalf("Verify = %v, %v; want ErrMissing", got, err)
				}
			default:
				if err == nil || !strings.Contains(err.Error(), tc.reason) || got != nil {
					t.Fatalf("Verify = %v, %v; want a verification error (%s)", got, err, tc.reason)
				}
			}
		})
	}
}

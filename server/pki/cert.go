package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"

	"github.com/kedge/kedge/shared/atomicfile"
	"github.com/kedge/kedge/shared/certlife"
)

// CA is a loaded certificate authority.
type CA struct {
	Cert     *x509.Certificate
	Key      crypto.Signer
	CertPath string
	KeyPath  string
}

// Leaf describes a certificate signed by a CA.
type Leaf struct {
	CommonName   string
	Organization []string
	DNSNames     []string
	IPs          []net.IP
	Usages       []x509.ExtKeyUsage
}

// ensureCA loads the CA at dir/name.{crt,key}, creating it if neither file
// exists. A half-present or unreadable CA is an error: it is never replaced,
// because everything issued under it would silently stop being trusted.
func ensureCA(dir, name, commonName string) (*CA, error) {
	ca := &CA{CertPath: filepath.Join(dir, name+".crt"), KeyPath: filepath.Join(dir, name+".key")}
	certExists, keyExists := exists(ca.CertPath), exists(ca.KeyPath)
	if certExists != keyExists {
		return nil, fmt.Errorf("CA %s is incomplete (certificate present: %t, key present: %t); restore it or remove both files", name, certExists, keyExists)
	}
	if certExists {
		cert, key, err := loadPair(ca.CertPath, ca.KeyPath)
		if err != nil {
			return nil, fmt.Errorf("load CA %s: %w", name, err)
		}
		if !cert.IsCA {
			return nil, fmt.Errorf("load CA %s: %s is not a CA certificate", name, ca.CertPath)
		}
		ca.Cert, ca.Key = cert, key
		return ca, nil
	}
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	// NewSelfSignedCACert issues for 10 years; the timestamp tells CAs apart.
	cn := fmt.Sprintf("%s@%d", commonName, time.Now().Unix())
	cert, err := certutil.NewSelfSignedCACert(certutil.Config{CommonName: cn}, key)
	if err != nil {
		return nil, fmt.Errorf("create CA %s: %w", name, err)
	}
	if err := writePair(ca.CertPath, ca.KeyPath, cert, key); err != nil {
		return nil, err
	}
	ca.Cert, ca.Key = cert, key
	return ca, nil
}

// ensureLeaf returns dir/name.{crt,key}, issuing a new certificate when the
// existing one is missing, unreadable, not signed by ca, due for renewal
// (certlife.Due), or lacks a requested name. A renewal keeps a good existing
// key, so only the certificate file changes and a reader never sees a
// certificate with the wrong key. It returns the certificate it replaced,
// if any, and whether it issued one.
func ensureLeaf(ca *CA, dir, name string, leaf Leaf, now time.Time) (certPath, keyPath string, replaced *x509.Certificate, issued bool, err error) {
	certPath, keyPath = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	cert, key, err := loadPair(certPath, keyPath)
	if err == nil && reusable(cert, ca, leaf, now) {
		return certPath, keyPath, nil, false, nil
	}
	if err != nil {
		cert = nil
		if key, err = newKey(); err != nil {
			return "", "", nil, false, err
		}
	}
	newCert, err := sign(ca, leaf, key.Public(), now)
	if err != nil {
		return "", "", nil, false, fmt.Errorf("issue %s: %w", name, err)
	}
	if err := writePair(certPath, keyPath, newCert, key); err != nil {
		return "", "", nil, false, err
	}
	return certPath, keyPath, cert, true, nil
}

func reusable(cert *x509.Certificate, ca *CA, leaf Leaf, now time.Time) bool {
	if cert.CheckSignatureFrom(ca.Cert) != nil || certlife.Due(cert, now) {
		return false
	}
	if cert.Subject.CommonName != leaf.CommonName || !slices.Equal(cert.Subject.Organization, leaf.Organization) {
		return false
	}
	for _, d := range leaf.DNSNames {
		if !slices.Contains(cert.DNSNames, d) {
			return false
		}
	}
	for _, ip := range leaf.IPs {
		if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
			return false
		}
	}
	return true
}

func sign(ca *CA, leaf Leaf, pub crypto.PublicKey, now time.Time) (*x509.Certificate, error) {
	lifetime, err := certlife.Lifetime()
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	notBefore, notAfter := certlife.Validity(now, lifetime)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: leaf.CommonName, Organization: leaf.Organization},
		DNSNames:     leaf.DNSNames,
		IPAddresses:  leaf.IPs,
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  leaf.Usages,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func newKey() (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return key, nil
}

// ensureKey loads the private key at path or creates it (0600).
func ensureKey(path string) error {
	if exists(path) {
		if _, err := keyutil.PrivateKeyFromFile(path); err != nil {
			return fmt.Errorf("load key %s: %w", path, err)
		}
		return nil
	}
	key, err := newKey()
	if err != nil {
		return err
	}
	pemKey, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return err
	}
	return writeFile(path, pemKey, 0o600)
}

func loadPair(certPath, keyPath string) (*x509.Certificate, crypto.Signer, error) {
	certs, err := certutil.CertsFromFile(certPath)
	if err != nil {
		return nil, nil, err
	}
	k, err := keyutil.PrivateKeyFromFile(keyPath)
	if err != nil {
		return nil, nil, err
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("%s: not a signing key", keyPath)
	}
	if !publicKeysEqual(certs[0].PublicKey, signer.Public()) {
		return nil, nil, fmt.Errorf("%s does not match %s", keyPath, certPath)
	}
	return certs[0], signer, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ak, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ak.Equal(b)
}

func writePair(certPath, keyPath string, cert *x509.Certificate, key crypto.Signer) error {
	pemKey, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return err
	}
	pemCert, err := certutil.EncodeCertificates(cert)
	if err != nil {
		return err
	}
	if err := writeFile(keyPath, pemKey, 0o600); err != nil {
		return err
	}
	return writeFile(certPath, pemCert, 0o644)
}

// writeFile replaces path atomically with data at the given mode, creating
// the directory (0700) if needed. Unchanged content is left alone.
func writeFile(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return os.Chmod(path, mode)
	}
	return atomicfile.Write(path, data, mode)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, os.ErrNotExist)
}

// LoadCA loads an existing CA; it never creates one.
func LoadCA(certPath, keyPath string) (*CA, error) {
	cert, key, err := loadPair(certPath, keyPath)
	if err != nil {
		return nil, fmt.Errorf("load CA %s: %w", certPath, err)
	}
	return &CA{Cert: cert, Key: key, CertPath: certPath, KeyPath: keyPath}, nil
}

// Sign issues a certificate for pub, valid for certlife.Lifetime(), with leaf's subject,
// names and usages. Callers decide the subject; nothing is taken from the
// requester but its public key.
func (ca *CA) Sign(leaf Leaf, pub crypto.PublicKey) (*x509.Certificate, error) {
	return sign(ca, leaf, pub, time.Now())
}

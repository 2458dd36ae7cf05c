package keypair

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kedge/kedge/shared/atomicfile"
)

// writePair writes a self-signed certificate named cn for key (new if nil).
func writePair(t *testing.T, dir, cn string, key *ecdsa.PrivateKey) *ecdsa.PrivateKey {
	t.Helper()
	if key == nil {
		var err error
		if key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			t.Fatal(err)
		}
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.Write(filepath.Join(dir, "k.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.Write(filepath.Join(dir, "k.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return key
}

func commonName(t *testing.T, f *Files) string {
	t.Helper()
	c, err := f.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	return c.Leaf.Subject.CommonName
}

func TestReloadsReplacedFilesAndKeepsLastGood(t *testing.T) {
	dir := t.TempDir()
	key := writePair(t, dir, "first", nil)
	f, err := Load(filepath.Join(dir, "k.crt"), filepath.Join(dir, "k.key"))
	if err != nil {
		t.Fatal(err)
	}
	if got := commonName(t, f); got != "first" {
		t.Fatalf("loaded %q, want first", got)
	}

	// A renewal with the same key: the new certificate is served.
	writePair(t, dir, "renewed", key)
	if got := commonName(t, f); got != "renewed" {
		t.Fatalf("after renewal: %q, want renewed", got)
	}

	// A certificate whose key is not there yet: the last good pair stays.
	other := t.TempDir()
	writePair(t, other, "half-written", nil)
	b, err := os.ReadFile(filepath.Join(other, "k.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.Write(filepath.Join(dir, "k.crt"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := commonName(t, f); got != "renewed" {
		t.Fatalf("with a mismatched pair: %q, want the last good one", got)
	}
	// Removed files: still the last good pair.
	os.Remove(filepath.Join(dir, "k.crt"))
	if got := commonName(t, f); got != "renewed" {
		t.Fatalf("with the certificate gone: %q, want the last good one", got)
	}
}

func TestLoadRefusesMissingOrMismatched(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "k.crt"), filepath.Join(dir, "k.key")); err == nil {
		t.Fatal("Load of missing files succeeded")
	}
	writePair(t, dir, "a", nil)
	other := t.TempDir()
	writePair(t, other, "b", nil)
	if _, err := Load(filepath.Join(dir, "k.crt"), filepath.Join(other, "k.key")); err == nil {
		t.Fatal("Load of a mismatched pair succeeded")
	}
}

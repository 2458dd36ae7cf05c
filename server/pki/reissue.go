package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// caNames are the CAs Ensure keeps, relative to the TLS dir.
var caNames = []string{"server-ca", "client-ca", "request-header-ca", "etcd/server-ca", "etcd/peer-ca"}

// Reissue signs the named leaf certificates of the TLS dir again now, each
// by the CA that signed it, with the same key, subject, names and usages,
// and replaces their files; a running server picks them up (see
// certrenewal). Names are file names without ".crt", relative to dir
// (client-admin, etcd/server). Nothing is written unless every name is a
// readable leaf with its key and a CA of dir signed it.
func Reissue(dir string, names []string, now time.Time) ([]Issued, error) {
	var cas []*CA
	for _, name := range caNames {
		ca := &CA{CertPath: filepath.Join(dir, name+".crt"), KeyPath: filepath.Join(dir, name+".key")}
		if !exists(ca.CertPath) {
			continue
		}
		loaded, err := LoadCA(ca.CertPath, ca.KeyPath)
		if err != nil {
			return nil, err
		}
		cas = append(cas, loaded)
	}
	type plan struct {
		name, certPath, keyPath string
		cert                    *x509.Certificate
		ca                      *CA
	}
	var plans []plan
	for _, name := range names {
		p := plan{name: name, certPath: filepath.Join(dir, name+".crt"), keyPath: filepath.Join(dir, name+".key")}
		if slices.Contains(caNames, name) {
			return nil, fmt.Errorf("%s is a CA; CAs are not reissued", name)
		}
		cert, _, err := loadPair(p.certPath, p.keyPath)
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no certificate %s in %s", name, dir)
		}
		if err != nil {
			return nil, fmt.Errorf("certificate %s: %w", name, err)
		}
		i := slices.IndexFunc(cas, func(ca *CA) bool { return cert.CheckSignatureFrom(ca.Cert) == nil })
		if i < 0 {
			return nil, fmt.Errorf("certificate %s is not signed by a CA in %s", name, dir)
		}
		p.cert, p.ca = cert, cas[i]
		plans = append(plans, p)
	}
	var out []Issued
	for _, p := range plans {
		_, key, err := loadPair(p.certPath, p.keyPath)
		if err != nil {
			return out, err
		}
		leaf := Leaf{CommonName: p.cert.Subject.CommonName, Organization: p.cert.Subject.Organization,
			DNSNames: p.cert.DNSNames, IPs: p.cert.IPAddresses, Usages: p.cert.ExtKeyUsage}
		cert, err := sign(p.ca, leaf, key.Public(), now)
		if err != nil {
			return out, fmt.Errorf("reissue %s: %w", p.name, err)
		}
		if err := writePair(p.certPath, p.keyPath, cert, key); err != nil {
			return out, err
		}
		out = append(out, Issued{Name: p.name, CertFile: p.certPath, Replaced: p.cert})
	}
	return out, nil
}

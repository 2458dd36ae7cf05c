// Package keypair serves a TLS certificate and key from files that may be
// replaced while the process runs (a renewed certificate): every use checks
// the files' modification times and sizes and reloads them when they
// changed. A pair that cannot be loaded (a certificate written before its
// key, say) leaves the last good one in use until the next change.
package keypair

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
)

// Files is a certificate and key kept current. It is safe for concurrent use.
type Files struct {
	certFile, keyFile string

	mu      sync.Mutex
	stamp   [2]stamp
	current *tls.Certificate
}

// stamp tells file versions apart: atomic replacement gives a new inode.
type stamp struct {
	mod   time.Time
	size  int64
	inode uint64
}

// Load reads the pair now; it fails if the files are missing, unreadable or
// do not match.
func Load(certFile, keyFile string) (*Files, error) {
	f := &Files{certFile: certFile, keyFile: keyFile}
	if _, err := f.Certificate(); err != nil {
		return nil, err
	}
	return f, nil
}

// Certificate returns the pair, reloaded if either file changed since the
// last load. It returns an error only if no pair was ever loaded.
func (f *Files) Certificate() (*tls.Certificate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now, err := stamps(f.certFile, f.keyFile)
	if f.current != nil && (err != nil || now == f.stamp) {
		return f.current, nil
	}
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
	if err != nil {
		if f.current != nil {
			return f.current, nil
		}
		return nil, fmt.Errorf("load %s: %w", f.certFile, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("load %s: %w", f.certFile, err)
		}
	}
	f.current, f.stamp = &cert, now
	return f.current, nil
}

// GetCertificate is for tls.Config.GetCertificate.
func (f *Files) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return f.Certificate()
}

// GetClientCertificate is for tls.Config.GetClientCertificate.
func (f *Files) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return f.Certificate()
}

func stamps(paths ...string) ([2]stamp, error) {
	var s [2]stamp
	for i, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return s, err
		}
		s[i] = stamp{mod: fi.ModTime(), size: fi.Size()}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			s[i].inode = st.Ino
		}
	}
	return s, nil
}

// Package certificate reports the certificates in a kedge data dir: the
// server's (<data-dir>/server/tls, with etcd's below it) and its node's
// (<data-dir>/agent/cred), each with its subject, issuer and expiry.
package certificate

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kedge/kedge/shared/certlife"
)

// Info is one certificate in a file of the data dir.
type Info struct {
	File     string    `json:"file"`
	Subject  string    `json:"subject"`
	Issuer   string    `json:"issuer"`
	CA       bool      `json:"ca"`
	NotAfter time.Time `json:"notAfter"`
	// DaysLeft is whole days until NotAfter, negative once expired.
	DaysLeft int `json:"daysLeft"`
	// RenewAt is when a leaf certificate is due for renewal (certlife),
	// which a running server or agent does by itself; zero for a CA.
	RenewAt time.Time `json:"renewAt,omitzero"`
}

// Expired reports whether the certificate's NotAfter is before now.
func (i Info) Expired(now time.Time) bool { return now.After(i.NotAfter) }

// Scan reads every *.crt file below dirs (a missing dir is skipped: an
// agent has no server part, a server with --disable-agent no node part)
// and returns each certificate in them, sorted by file. A file that holds
// no certificate or one that does not parse is an error naming the file.
func Scan(now time.Time, dirs ...string) ([]Info, error) {
	var out []Info
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) && path == dir {
					return fs.SkipDir
				}
				return err
			}
			if d.IsDir() || !strings.HasSuffix(path, ".crt") {
				return nil
			}
			infos, err := read(path, now)
			out = append(out, infos...)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	slices.SortStableFunc(out, func(a, b Info) int { return strings.Compare(a.File, b.File) })
	return out, nil
}

func read(path string, now time.Time) ([]Info, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []Info
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		info := Info{File: path, Subject: c.Subject.String(), Issuer: c.Issuer.String(), CA: c.IsCA,
			NotAfter: c.NotAfter.UTC(), DaysLeft: daysLeft(now, c.NotAfter)}
		if !c.IsCA {
			info.RenewAt = certlife.RenewAt(c).UTC()
		}
		out = append(out, info)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no PEM certificate in the file", path)
	}
	return out, nil
}

// daysLeft is whole days from now to t, rounded down (so a certificate
// with 23 hours left has 0 days, one expired an hour ago -1).
func daysLeft(now, t time.Time) int {
	return int(math.Floor(t.Sub(now).Hours() / 24))
}

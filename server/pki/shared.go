package pki

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"k8s.io/client-go/util/keyutil"
)

// SharedFiles are the files, relative to the TLS dir, that every server of a
// cluster holds the same copy of: the CAs with their keys and the
// service-account signing key. Leaf certificates are not shared; each server
// issues its own from these CAs.
var SharedFiles = []string{
	"server-ca.crt", "server-ca.key",
	"client-ca.crt", "client-ca.key",
	"request-header-ca.crt", "request-header-ca.key",
	"service-account.key",
	"etcd/server-ca.crt", "etcd/server-ca.key",
	"etcd/peer-ca.crt", "etcd/peer-ca.key",
}

// ReadShared reads the shared files of the TLS dir dir. Its result holds
// private keys: never log it.
func ReadShared(dir string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(SharedFiles))
	for _, name := range SharedFiles {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("read shared %s: %w", name, err)
		}
		out[name] = b
	}
	return out, nil
}

// InstallShared writes the shared files another server sent into the TLS
// dir dir, before Ensure. It checks everything before writing anything: the
// set of files must be exactly SharedFiles, every CA must be a CA whose key
// matches its certificate, and a file already on disk must have the same
// content. A data dir with another cluster's CAs is refused, never
// overwritten.
func InstallShared(dir string, files map[string][]byte) error {
	var missing, unknown []string
	for _, name := range SharedFiles {
		if _, ok := files[name]; !ok {
			missing = append(missing, name)
		}
	}
	for name := range files {
		if !slices.Contains(SharedFiles, name) {
			unknown = append(unknown, name)
		}
	}
	if len(missing) > 0 || len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("shared certificates: missing %v, unexpected %v", missing, unknown)
	}
	staged := filepath.Join(dir, ".join-check")
	if err := os.RemoveAll(staged); err != nil {
		return err
	}
	defer os.RemoveAll(staged)
	for _, name := range SharedFiles {
		if err := writeFile(filepath.Join(staged, name), files[name], 0o600); err != nil {
			return err
		}
	}
	for _, name := range SharedFiles {
		switch {
		case name == "service-account.key":
			if _, err := keyutil.PrivateKeyFromFile(filepath.Join(staged, name)); err != nil {
				return fmt.Errorf("shared %s: %w", name, err)
			}
		case strings.HasSuffix(name, ".crt"):
			base := strings.TrimSuffix(name, ".crt")
			cert, _, err := loadPair(filepath.Join(staged, name), filepath.Join(staged, base+".key"))
			if err != nil {
				return fmt.Errorf("shared CA %s: %w", base, err)
			}
			if !cert.IsCA {
				return fmt.Errorf("shared CA %s is not a CA certificate", base)
			}
		}
	}
	var differ []string
	for _, name := range SharedFiles {
		old, err := os.ReadFile(filepath.Join(dir, name))
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return err
		case !bytes.Equal(old, files[name]):
			differ = append(differ, name)
		}
	}
	if len(differ) > 0 {
		return fmt.Errorf("the data dir %s already holds other certificates (%s) than the cluster being joined; "+
			"it belongs to another cluster: use an empty --data-dir to join", dir, strings.Join(differ, ", "))
	}
	for _, name := range SharedFiles {
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".key") {
			mode = 0o600
		}
		if err := writeFile(filepath.Join(dir, name), files[name], mode); err != nil {
			return fmt.Errorf("install shared %s: %w", name, err)
		}
	}
	return nil
}

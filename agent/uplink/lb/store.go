package lb

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"

	"github.com/kedge/kedge/shared/atomicfile"
)

// stored is the content of the servers file.
type stored struct {
	Servers []string `json:"servers"`
}

// loadServers reads the servers stored at path. A missing file is
// (nil, false, nil); a file that cannot be parsed is an error.
func loadServers(path string) ([]string, bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var s stored
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, false, fmt.Errorf("parse %s: %w", path, err)
	}
	var out []string
	for _, a := range s.Servers {
		if _, _, err := net.SplitHostPort(a); err == nil {
			out = append(out, a)
		}
	}
	return out, true, nil
}

// saveServers replaces the servers stored at path.
func saveServers(path string, servers []string) error {
	b, err := json.MarshalIndent(stored{Servers: servers}, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(b, '\n'), 0o600)
}

// hostPort returns the host:port of an https URL (port 443 if it has none).
func hostPort(server string) (string, error) {
	u, err := url.Parse(server)
	if err != nil {
		return "", err
	}
	if u.Scheme != "https" || u.Hostname() == "" {
		return "", fmt.Errorf("%q is not an https:// URL", server)
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port), nil
}

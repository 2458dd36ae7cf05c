// Package registries turns /etc/kedge/registries.yaml (mirrors, auth, TLS)
// into containerd's hosts.toml files, one directory per registry host.
package registries

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/kedge/kedge/shared/atomicfile"
)

// DefaultFile is where users put the registry configuration.
const DefaultFile = "/etc/kedge/registries.yaml"

// Registries is the file's content.
type Registries struct {
	// Mirrors maps a registry host (docker.io, or "*" for every registry)
	// to the endpoints tried in order before the registry itself.
	Mirrors map[string]Mirror `json:"mirrors"`
	// Configs maps an endpoint host to its credentials and TLS settings.
	Configs map[string]Config `json:"configs"`
}

// Mirror lists endpoints for one registry.
type Mirror struct {
	Endpoints []string          `json:"endpoint"`
	Rewrite   map[string]string `json:"rewrite,omitempty"`
}

// Config holds an endpoint's authentication and TLS settings.
type Config struct {
	Auth *Auth `json:"auth,omitempty"`
	TLS  *TLS  `json:"tls,omitempty"`
}

// Auth is basic authentication or a bearer token.
type Auth struct {
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	Token    string `json:"token,omitempty"`
}

// TLS configures the connection to an endpoint.
type TLS struct {
	CAFile             string `json:"ca_file,omitempty"`
	CertFile           string `json:"cert_file,omitempty"`
	KeyFile            string `json:"key_file,omitempty"`
	InsecureSkipVerify bool   `json:"insecure_skip_verify,omitempty"`
}

// Load reads path; a missing file is an empty configuration.
func Load(path string) (*Registries, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &Registries{}, nil
	}
	if err != nil {
		return nil, err
	}
	r := &Registries{}
	if err := yaml.UnmarshalStrict(data, r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := r.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

func (r *Registries) validate() error {
	for host, m := range r.Mirrors {
		if _, err := prefixRewrite(m.Rewrite); err != nil {
			return fmt.Errorf("mirrors.%s.rewrite: %w", host, err)
		}
		for _, ep := range m.Endpoints {
			u, err := url.Parse(ep)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("mirrors.%s: endpoint %q is not an http(s) URL", host, ep)
			}
		}
	}
	for host, c := range r.Configs {
		if c.TLS != nil && (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
			return fmt.Errorf("configs.%s.tls: cert_file and key_file go together", host)
		}
		if c.Auth != nil && c.Auth.Token != "" && c.Auth.Username != "" {
			return fmt.Errorf("configs.%s.auth: use username/password or token, not both", host)
		}
	}
	return nil
}

// HostsFiles renders one hosts.toml per registry host, keyed by the
// directory name containerd expects ("_default" for "*").
func (r *Registries) HostsFiles() map[string]string {
	out := map[string]string{}
	hosts := make([]string, 0, len(r.Mirrors))
	for h := range r.Mirrors {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	for _, host := range hosts {
		var b strings.Builder
		dir := host
		if host == "*" {
			dir = "_default"
		} else {
			fmt.Fprintf(&b, "server = %s\n", strconv.Quote(upstream(host)))
		}
		prefix, _ := prefixRewrite(r.Mirrors[host].Rewrite) // validated in Load
		for _, endpoint := range r.Mirrors[host].Endpoints {
			u, _ := url.Parse(endpoint)
			ep := endpoint
			if prefix != "" {
				ep = apiRoot(u) + "/" + prefix
			}
			fmt.Fprintf(&b, "\n[host.%s]\n  capabilities = [\"pull\", \"resolve\"]\n", strconv.Quote(ep))
			if prefix != "" {
				b.WriteString("  override_path = true\n")
			}
			c, ok := r.Configs[u.Host]
			if !ok {
				continue
			}
			if t := c.TLS; t != nil {
				if t.CAFile != "" {
					fmt.Fprintf(&b, "  ca = %s\n", strconv.Quote(t.CAFile))
				}
				if t.CertFile != "" {
					fmt.Fprintf(&b, "  client = [[%s, %s]]\n", strconv.Quote(t.CertFile), strconv.Quote(t.KeyFile))
				}
				if t.InsecureSkipVerify {
					b.WriteString("  skip_verify = true\n")
				}
			}
			if a := c.Auth; a != nil {
				header := ""
				if a.Token != "" {
					header = "Bearer " + a.Token
				} else if a.Username != "" {
					header = "Basic " + base64.StdEncoding.EncodeToString([]byte(a.Username+":"+a.Password))
				}
				if header != "" {
					fmt.Fprintf(&b, "  [host.%s.header]\n    Authorization = [%s]\n", strconv.Quote(ep), strconv.Quote(header))
				}
			}
		}
		out[dir] = b.String()
	}
	return out
}

// prefixRewrite returns PREFIX for the one rewrite containerd can express,
// {"^(.*)$": "PREFIX/$1"} (every repository moved under PREFIX on the
// mirror), "" for no rewrite, and an error for any other rule: upstream
// containerd has no general repository rewrites.
func prefixRewrite(rules map[string]string) (string, error) {
	if len(rules) == 0 {
		return "", nil
	}
	if len(rules) == 1 {
		if to, ok := rules["^(.*)$"]; ok {
			prefix, found := strings.CutSuffix(to, "/$1")
			prefix = strings.Trim(prefix, "/")
			if found && prefix != "" && !strings.ContainsAny(prefix, "$\\()[]{}*+?^| ") {
				return prefix, nil
			}
		}
	}
	return "", errors.New(`only a prefix rule {"^(.*)$": "PREFIX/$1"} is supported (containerd has no general rewrites)`)
}

// apiRoot is the endpoint's registry API root: its path ending in /v2.
func apiRoot(u *url.URL) string {
	root := *u
	root.Path = strings.TrimSuffix(root.Path, "/")
	if !strings.HasSuffix(root.Path, "/v2") {
		root.Path += "/v2"
	}
	return root.String()
}

// upstream is the registry's own URL, used when every mirror fails.
func upstream(host string) string {
	if host == "docker.io" {
		return "https://registry-1.docker.io"
	}
	return "https://" + host
}

// Write replaces dir's content with the rendered hosts.toml files (0600:
// they may hold credentials).
func (r *Registries) Write(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	for sub, content := range r.HostsFiles() {
		d := filepath.Join(dir, sub)
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
		if err := atomicfile.Write(filepath.Join(d, "hosts.toml"), []byte(content), 0o600); err != nil {
			return err
		}
	}
	return nil
}

package registries

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kedge/kedge/scripts/testenv"
)

const sample = `mirrors:
  docker.io:
    endpoint:
      - "https://mirror.shop.local:5000"
  "*":
    endpoint:
      - "http://10.0.0.5:5000"
  ghcr.io:
    endpoint:
      - "https://mirror.shop.local:5000/"
    rewrite:
      "^(.*)$": "ghcr-cache/$1"
configs:
  "mirror.shop.local:5000":
    auth:
      username: kedge
      password: s3cret
    tls:
      ca_file: /etc/kedge/mirror-ca.crt
      cert_file: /etc/kedge/client.crt
      key_file: /etc/kedge/client.key
`

func write(t *testing.T, body string) string {
	p := filepath.Join(t.TempDir(), "registries.yaml")
	os.WriteFile(p, []byte(body), 0o600)
	return p
}

func TestRenderGolden(t *testing.T) {
	r, err := Load(write(t, sample))
	if err != nil {
		t.Fatal(err)
	}
	files := r.HostsFiles()
	for dir, content := range files {
		testenv.Golden(t, dir+".hosts.toml", []byte(content))
	}
	if len(files) != 3 {
		t.Fatalf("rendered %d files, want docker.io, ghcr.io and _default", len(files))
	}
	out := t.TempDir()
	if err := r.Write(out); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(out, "docker.io", "hosts.toml"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("hosts.toml: %v %v", st, err)
	}
}

func TestLoadErrors(t *testing.T) {
	cases := map[string]string{
		"not yaml":      "mirrors: [",
		"unknown key":   "mirors: {}",
		"bad endpoint":  "mirrors:\n  docker.io:\n    endpoint: [\"ftp://x\"]\n",
		"regex rewrite": "mirrors:\n  docker.io:\n    endpoint: [\"https://m\"]\n    rewrite:\n      \"^a\": \"b\"\n",
		"odd prefix":    "mirrors:\n  docker.io:\n    endpoint: [\"https://m\"]\n    rewrite:\n      \"^(.*)$\": \"a(b)/$1\"\n",
		"two rules":     "mirrors:\n  docker.io:\n    endpoint: [\"https://m\"]\n    rewrite:\n      \"^(.*)$\": \"p/$1\"\n      \"^x$\": \"y\"\n",
		"half tls pair": "configs:\n  m:\n    tls:\n      cert_file: /c\n",
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Load(write(t, body)); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if r, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err != nil || len(r.HostsFiles()) != 0 {
		t.Fatalf("missing file: %v %v", r, err)
	}
}

func TestPasswordNotInErrors(t *testing.T) {
	_, err := Load(write(t, sample+"bogus: 1\n"))
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("err = %v", err)
	}
}

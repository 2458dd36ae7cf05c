package command

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/kedge/kedge/server/config"
)

// parse runs the server command's flag handling (without starting a server)
// and returns the resulting config.
func parse(t *testing.T, env map[string]string, args ...string) (config.Config, error) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	cmd := New(nil)
	var got config.Config
	cmd.Action = func(c *cli.Context) error { got = fromFlags(c); return nil }
	app := &cli.App{Name: "kedge", DisableSliceFlagSeparator: true, Commands: []*cli.Command{cmd}}
	err := app.Run(append([]string{"kedge", "server"}, args...))
	return got, err
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigFileSetsFlags(t *testing.T) {
	p := writeConfig(t, `
data-dir: /srv/kedge
https-listen-port: 7443
cluster-init: true
tls-san:
  - edge.example.com
  - 192.0.2.1
kube-apiserver-arg:
  - audit-log-maxage=3
`)
	got, err := parse(t, nil, "--config", p)
	if err != nil {
		t.Fatal(err)
	}
	if got.DataDir != "/srv/kedge" || got.HTTPSListenPort != 7443 || !got.ClusterInit {
		t.Fatalf("got %+v", got)
	}
	if !slices.Equal(got.TLSSANs, []string{"edge.example.com", "192.0.2.1"}) {
		t.Fatalf("tls-san = %v", got.TLSSANs)
	}
	if !slices.Equal(got.KubeAPIServerArgs, []string{"audit-log-maxage=3"}) {
		t.Fatalf("kube-apiserver-arg = %v", got.KubeAPIServerArgs)
	}
}

func TestPrecedenceFlagOverEnvOverFile(t *testing.T) {
	p := writeConfig(t, "data-dir: /from/file\nnode-name: file-node\ncluster-dns: 10.43.0.53\n")
	got, err := parse(t, map[string]string{"KEDGE_NODE_NAME": "env-node", "KEDGE_DATA_DIR": "/from/env"},
		"--config", p, "--data-dir", "/from/flag")
	if err != nil {
		t.Fatal(err)
	}
	if got.DataDir != "/from/flag" || got.NodeName != "env-node" || got.ClusterDNS != "10.43.0.53" {
		t.Fatalf("got data-dir=%s node-name=%s cluster-dns=%s", got.DataDir, got.NodeName, got.ClusterDNS)
	}
}

func TestCommaSeparatedSANsAndArgsWithCommas(t *testing.T) {
	got, err := parse(t, nil, "--config", os.DevNull, "--tls-san", "a.example.com,b.example.com",
		"--kube-apiserver-arg", "enable-admission-plugins=NodeRestriction,AlwaysPullImages")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.TLSSANs, []string{"a.example.com", "b.example.com"}) {
		t.Fatalf("tls-san = %v", got.TLSSANs)
	}
	if !slices.Equal(got.KubeAPIServerArgs, []string{"enable-admission-plugins=NodeRestriction,AlwaysPullImages"}) {
		t.Fatalf("a comma inside a pass-through arg must not split it: %v", got.KubeAPIServerArgs)
	}
}

func TestConfigFileErrors(t *testing.T) {
	cases := map[string]struct{ body, want string }{
		"not yaml":    {"data-dir: [x\n", "not valid YAML"},
		"unknown key": {"datadir: /x\n", `unknown key "datadir"`},
		"map value":   {"tls-san:\n  a: b\n", "not a map"},
		"bad int":     {"https-listen-port: many\n", `key "https-listen-port"`},
		"nested key":  {"config: /other.yaml\n", `unknown key "config"`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := parse(t, nil, "--config", writeConfig(t, tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestMissingConfigFile(t *testing.T) {
	if _, err := parse(t, nil, "--config", "/nonexistent/kedge.yaml"); err == nil {
		t.Fatal("an explicitly named missing config file was accepted")
	}
}

func TestJoinFromFlagsEnvAndConfigFile(t *testing.T) {
	const url, tok = "https://192.0.2.1:6443", "K10abc::server:secret"
	for name, tc := range map[string]struct {
		env  map[string]string
		args []string
	}{
		"flags":       {nil, []string{"--server", url, "--token", tok}},
		"short flags": {nil, []string{"-s", url, "-t", tok}},
		"env":         {map[string]string{"KEDGE_URL": url, "KEDGE_TOKEN": tok}, []string{"--config", os.DevNull}},
		"config file": {nil, []string{"--config", writeConfig(t, "server: "+url+"\ntoken: "+tok+"\n")}},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := parse(t, tc.env, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			if got.Server != url || got.Token != tok {
				t.Fatalf("server %q token set %t", got.Server, got.Token == tok)
			}
		})
	}
}

// TestSecretsEncryptionFlag: off by default; on from the config file (the
// hardened config in README) or KEDGE_SECRETS_ENCRYPTION.
func TestSecretsEncryptionFlag(t *testing.T) {
	if got, err := parse(t, nil, "--config", os.DevNull); err != nil || got.SecretsEncryption {
		t.Fatalf("default: %v, %v", got.SecretsEncryption, err)
	}
	if got, err := parse(t, nil, "--config", writeConfig(t, "secrets-encryption: true\nwrite-kubeconfig-mode: \"0600\"\n")); err != nil || !got.SecretsEncryption {
		t.Fatalf("config file: %v, %v", got.SecretsEncryption, err)
	}
	if got, err := parse(t, map[string]string{"KEDGE_SECRETS_ENCRYPTION": "true"}, "--config", os.DevNull); err != nil || !got.SecretsEncryption {
		t.Fatalf("variable: %v, %v", got.SecretsEncryption, err)
	}
}

package control

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apiserver/pkg/server/egressselector"

	"github.com/kedge/kedge/scripts/testenv"
	"github.com/kedge/kedge/server/config"
	"github.com/kedge/kedge/server/pki"
)

func inputs(t *testing.T, mutate func(*config.Config)) Inputs {
	t.Helper()
	c := config.Default()
	c.DataDir = "/var/lib/kedge"
	c.NodeIP = "192.0.2.10"
	c.NodeName = "edge-1"
	if mutate != nil {
		mutate(&c)
	}
	cc, err := c.Complete()
	if err != nil {
		t.Fatal(err)
	}
	tls := &pki.Files{}
	for _, p := range []*string{&tls.ServerCA, &tls.ServerCAKey, &tls.ClientCA, &tls.ClientCAKey, &tls.RequestHeaderCA,
		&tls.ServiceAccountKey, &tls.ServingCert, &tls.ServingKey, &tls.KubeletClientCert, &tls.KubeletKey,
		&tls.AuthProxyCert, &tls.AuthProxyKey} {
		*p = "/tls/file"
	}
	tls.ServerCA, tls.ClientCA, tls.ServiceAccountKey = "/tls/server-ca.crt", "/tls/client-ca.crt", "/tls/service-account.key"
	return Inputs{Config: cc, TLS: tls, Storage: Storage{Servers: []string{"unix:///var/lib/kedge/server/kine.sock"}}}
}

func golden(t *testing.T, name string, args []string) {
	t.Helper()
	testenv.Golden(t, name, []byte(strings.Join(args, "\n")+"\n"))
}

func TestGoldenArgs(t *testing.T) {
	in := inputs(t, nil)
	golden(t, "kube-apiserver.args", APIServerArgs(in))
	golden(t, "kube-scheduler.args", SchedulerArgs(in))
	golden(t, "kube-controller-manager.args", ControllerManagerArgs(in))
	golden(t, "egress-selector.yaml", []string{strings.TrimSuffix(EgressSelectorConfig("/var/lib/kedge/server/egress.sock"), "\n")})
}

func TestEtcdStorageArgs(t *testing.T) {
	in := inputs(t, nil)
	in.Storage = Storage{Servers: []string{"https://127.0.0.1:2379"}, CAFile: "/ca", CertFile: "/c", KeyFile: "/k"}
	args := APIServerArgs(in)
	for _, want := range []string{"--etcd-servers=https://127.0.0.1:2379", "--etcd-cafile=/ca", "--etcd-certfile=/c", "--etcd-keyfile=/k"} {
		if !slices.Contains(args, want) {
			t.Errorf("apiserver args lack %s", want)
		}
	}
	// kedge elects the server that runs them; theirs stays off.
	if !slices.Contains(SchedulerArgs(in), "--leader-elect=false") || !slices.Contains(ControllerManagerArgs(in), "--leader-elect=false") {
		t.Error("upstream leader election is on")
	}
}

func TestPassThroughArgsOverrideAndAdd(t *testing.T) {
	in := inputs(t, func(c *config.Config) {
		c.KubeAPIServerArgs = []string{"--profiling=true", "audit-log-path=/var/log/audit.log", "enable-admission-plugins=NodeRestriction,AlwaysPullImages"}
		c.KubeControllerManagerArgs = []string{"node-cidr-mask-size=25"}
	})
	args := APIServerArgs(in)
	for _, want := range []string{"--profiling=true", "--audit-log-path=/var/log/audit.log", "--enable-admission-plugins=NodeRestriction,AlwaysPullImages"} {
		if !slices.Contains(args, want) {
			t.Errorf("apiserver args lack %s", want)
		}
	}
	if slices.Contains(args, "--profiling=false") {
		t.Error("default not replaced by override")
	}
	if !slices.Contains(ControllerManagerArgs(in), "--node-cidr-mask-size=25") {
		t.Error("controller-manager override missing")
	}
}

func TestLocalURL(t *testing.T) {
	for bind, want := range map[string]string{
		"0.0.0.0":  "https://127.0.0.1:6443",
		"::":       "https://127.0.0.1:6443",
		"10.0.0.5": "https://10.0.0.5:6443",
		"fd00::5":  "https://[fd00::5]:6443",
	} {
		in := inputs(t, func(c *config.Config) { c.BindAddress = bind })
		if got := LocalURL(in.Config); got != want {
			t.Errorf("bind %s: LocalURL = %s, want %s", bind, got, want)
		}
	}
}

// TestEgressSelectorConfigLoads: upstream reads, validates and builds a
// dialer from the rendered file.
func TestEgressSelectorConfigLoads(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "egress-selector.yaml")
	if err := os.WriteFile(path, []byte(EgressSelectorConfig(filepath.Join(dir, "egress.sock"))), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := egressselector.ReadEgressSelectorConfiguration(path)
	if err != nil {
		t.Fatal(err)
	}
	if errs := egressselector.ValidateEgressSelectorConfiguration(cfg); len(errs) > 0 {
		t.Fatal(errs.ToAggregate())
	}
	sel, err := egressselector.NewEgressSelector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if dial, err := sel.Lookup(egressselector.Cluster.AsNetworkContext()); err != nil || dial == nil {
		t.Fatalf("no dialer for the cluster egress: %v", err)
	}
}

// The discovery document names the public port: at the advertised address,
// or at a loopback bind address, the only one that then answers.
func TestJWKSURI(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*config.Config)
		want   string
	}{
		{"default", nil, "https://192.0.2.10:6443/openid/v1/jwks"},
		{"advertised", func(c *config.Config) { c.AdvertiseAddress = "198.51.100.7"; c.HTTPSListenPort = 8443 }, "https://198.51.100.7:8443/openid/v1/jwks"},
		{"bound to one address", func(c *config.Config) { c.BindAddress = "192.0.2.10" }, "https://192.0.2.10:6443/openid/v1/jwks"},
		{"loopback only", func(c *config.Config) { c.BindAddress = "127.0.0.1" }, "https://127.0.0.1:6443/openid/v1/jwks"},
		{"IPv6", func(c *config.Config) { c.AdvertiseAddress = "2001:db8::1" }, "https://[2001:db8::1]:6443/openid/v1/jwks"},
	} {
		if got := JWKSURI(inputs(t, tc.mutate).Config); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

// TestEncryptionConfigArgs: the provider config and its automatic reload
// (key rotation without a restart) are passed only when there is a file.
func TestEncryptionConfigArgs(t *testing.T) {
	in := inputs(t, nil)
	if args := strings.Join(APIServerArgs(in), " "); strings.Contains(args, "encryption-provider-config") {
		t.Errorf("no file, yet: %s", args)
	}
	in.EncryptionConfig = "/var/lib/kedge/server/cred/encryption-config.json"
	args := APIServerArgs(in)
	for _, want := range []string{"--encryption-provider-config=/var/lib/kedge/server/cred/encryption-config.json", "--encryption-provider-config-automatic-reload=true"} {
		if !slices.Contains(args, want) {
			t.Errorf("apiserver args lack %s", want)
		}
	}
}

package config

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const tok = "K10" + "0000000000000000000000000000000000000000000000000000000000000000" + "::node:0123456789abcdef"

func valid() Config {
	return Config{Server: "https://192.0.2.1:6443", Token: tok, DataDir: "/var/lib/kedge"}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"valid", func(*Config) {}, ""},
		{"labels and taints", func(c *Config) {
			c.NodeLabels = []string{"site=shop-12"}
			c.NodeTaints = []string{"edge=true:NoSchedule", "dedicated:NoExecute"}
		}, ""},
		{"no server", func(c *Config) { c.Server = "" }, "--server is required"},
		{"http server", func(c *Config) { c.Server = "http://x:6443" }, "not an https:// URL"},
		{"no token", func(c *Config) { c.Token = "" }, "--token or --token-file is required"},
		{"both tokens", func(c *Config) { c.TokenFile = "/t" }, "cannot be used together"},
		{"bad token", func(c *Config) { c.Token = "K10zz::node:x" }, "--token"},
		{"bad node name", func(c *Config) { c.NodeName = "Edge_1" }, "--node-name"},
		{"bad node ip", func(c *Config) { c.NodeIP = "1.2.3" }, "--node-ip"},
		{"external ips", func(c *Config) { c.NodeExternalIPs = []string{"203.0.113.7", "198.51.100.1,2001:db8::1"} }, ""},
		{"api cache port on the lb port", func(c *Config) { c.APICachePort, c.LBPort = 6444, 6444 }, "must differ"},
		{"bad external ip", func(c *Config) { c.NodeExternalIPs = []string{"203.0.113.7,public"} }, `--node-external-ip "public" is not an IP address`},
		{"empty external ip", func(c *Config) { c.NodeExternalIPs = []string{"203.0.113.7,"} }, `--node-external-ip "" is not an IP address`},
		{"unspecified external ip", func(c *Config) { c.NodeExternalIPs = []string{"0.0.0.0"} }, `--node-external-ip "0.0.0.0"`},
		{"bad label", func(c *Config) { c.NodeLabels = []string{"novalue"} }, "--node-label"},
		{"bad taint effect", func(c *Config) { c.NodeTaints = []string{"k=v:Sometimes"} }, "effect"},
		{"bad kubelet arg", func(c *Config) { c.KubeletArgs = []string{"v"} }, "--kubelet-arg"},
		{"lb port", func(c *Config) { c.LBPort = 16444 }, ""},
		{"negative lb port", func(c *Config) { c.LBPort = -1 }, "--lb-port -1 is not a port"},
		{"lb port too big", func(c *Config) { c.LBPort = 70000 }, "--lb-port 70000 is not a port"},
		{"api cache port", func(c *Config) { c.APICachePort = 16445 }, ""},
		{"api cache port too big", func(c *Config) { c.APICachePort = 70000 }, "--api-cache-port 70000 is not a port"},
		{"bad external ip", func(c *Config) { c.NodeExternalIPs = []string{"203.0.113"} }, "--node-external-ip"},
		{"local storage path", func(c *Config) { c.LocalStoragePath = "/srv/volumes" }, ""},
		{"local storage path is the root", func(c *Config) { c.LocalStoragePath = "//" }, "--local-storage-path must be a directory below /"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.mutate(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestCompleteReadsTokenFileAndDetects(t *testing.T) {
	f := filepath.Join(t.TempDir(), "token")
	os.WriteFile(f, []byte(tok+"\n"), 0o600)
	c := valid()
	c.Token, c.TokenFile, c.NodeName = "", f, "edge-1"
	detect := func() (net.IP, error) { return net.ParseIP("192.0.2.9"), nil }
	cc, err := c.Complete(detect)
	if err != nil {
		t.Fatal(err)
	}
	if cc.Token.Username != "node" || !cc.NodeIP.Equal(net.ParseIP("192.0.2.9")) || cc.Paths.Socket != "/run/kedge/containerd/containerd.sock" {
		t.Fatalf("completed = %+v", cc)
	}
	if len(cc.NodeExternalIPs) != 0 {
		t.Fatalf("external IPs without --node-external-ip: %v", cc.NodeExternalIPs)
	}
	if cc.APIServer != c.Server {
		t.Fatalf("without the load balancer APIServer = %q, want --server", cc.APIServer)
	}
	c.LBPort = DefaultLBPort
	if cc, err = c.Complete(detect); err != nil || cc.APIServer != "https://127.0.0.1:6444" {
		t.Fatalf("with the load balancer APIServer = %q (%v)", cc.APIServer, err)
	}
	c.TokenFile = filepath.Join(t.TempDir(), "missing")
	if _, err := c.Complete(nil); err == nil || !strings.Contains(err.Error(), "--token-file") {
		t.Fatalf("missing token file: %v", err)
	}
}

func TestWithNodeIDIsStable(t *testing.T) {
	c := valid()
	c.DataDir, c.NodeName, c.WithNodeID = t.TempDir(), "edge", true
	detect := func() (net.IP, error) { return net.ParseIP("192.0.2.9"), nil }
	a, err := c.Complete(detect)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Complete(detect)
	if err != nil {
		t.Fatal(err)
	}
	if a.NodeName != b.NodeName || !strings.HasPrefix(a.NodeName, "edge-") || len(a.NodeName) != len("edge-")+8 {
		t.Fatalf("node names %q, %q", a.NodeName, b.NodeName)
	}
}

func TestCompleteParsesExternalIPs(t *testing.T) {
	c := valid()
	c.NodeName, c.NodeExternalIPs = "edge-1", []string{"203.0.113.7, 2001:db8::7", "198.51.100.1"}
	cc, err := c.Complete(func() (net.IP, error) { return net.ParseIP("192.0.2.9"), nil })
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ip := range cc.NodeExternalIPs {
		got = append(got, ip.String())
	}
	if strings.Join(got, " ") != "203.0.113.7 2001:db8::7 198.51.100.1" {
		t.Fatalf("external IPs = %v", got)
	}
}

func TestCompleteLocalStoragePath(t *testing.T) {
	c := valid()
	c.DataDir, c.NodeName = "/data", "edge-1"
	detect := func() (net.IP, error) { return net.ParseIP("192.0.2.9"), nil }
	cc, err := c.Complete(detect)
	if err != nil || cc.Paths.Storage != "/data/storage" {
		t.Fatalf("default storage = %q (%v), want /data/storage", cc.Paths.Storage, err)
	}
	c.LocalStoragePath = "/srv/volumes/"
	if cc, err = c.Complete(detect); err != nil || cc.Paths.Storage != "/srv/volumes" {
		t.Fatalf("--local-storage-path /srv/volumes/: storage = %q (%v)", cc.Paths.Storage, err)
	}
}

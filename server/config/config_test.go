package config

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const fullToken = "K10" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" + "::server:server-secret-0123456789"

func TestValidate(t *testing.T) {
	cases := []struct {
		name    string
		mutate  func(*Config)
		wantErr string // empty: valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"resolv-conf", func(c *Config) { c.ResolvConf = "/dev/null" }, ""},
		{"missing resolv-conf", func(c *Config) { c.ResolvConf = "/nonexistent/resolv.conf" }, "--resolv-conf: stat /nonexistent/resolv.conf"},
		{"sqlite endpoint", func(c *Config) { c.DatastoreEndpoint = "sqlite:///tmp/x.db" }, ""},
		{"postgres endpoint", func(c *Config) { c.DatastoreEndpoint = "postgres://u:p@db:5432/kedge" }, ""},
		{"etcd endpoints", func(c *Config) { c.DatastoreEndpoint = "https://10.0.0.1:2379,https://10.0.0.2:2379" }, ""},
		{"ipv6 cidrs", func(c *Config) {
			c.ClusterCIDR, c.ServiceCIDR, c.ClusterDNS = "fd00:42::/56", "fd00:43::/112", "fd00:43::a"
		}, ""},
		{"tls sans", func(c *Config) { c.TLSSANs = []string{"edge.example.com", "192.0.2.7", "*.edge.example.com"} }, ""},
		{"pass-through args", func(c *Config) { c.KubeAPIServerArgs = []string{"--v=2", "audit-log-maxage=3"} }, ""},

		{"empty data dir", func(c *Config) { c.DataDir = "" }, "--data-dir"},
		{"port zero", func(c *Config) { c.HTTPSListenPort = 0 }, "--https-listen-port 0"},
		{"port too big", func(c *Config) { c.HTTPSListenPort = 70000 }, "--https-listen-port 70000"},
		{"bad bind", func(c *Config) { c.BindAddress = "localhost" }, "--bind-address"},
		{"bad node ip", func(c *Config) { c.NodeIP = "1.2.3" }, "--node-ip"},
		{"loopback node ip", func(c *Config) { c.NodeIP = "127.0.0.1" }, "loopback"},
		{"loopback advertise", func(c *Config) { c.AdvertiseAddress = "::1" }, "loopback"},
		{"bad node name", func(c *Config) { c.NodeName = "Edge_1" }, "--node-name"},
		{"bad san", func(c *Config) { c.TLSSANs = []string{"bad san"} }, "--tls-san"},
		{"malformed cluster cidr", func(c *Config) { c.ClusterCIDR = "10.42.0.0/33" }, "--cluster-cidr"},
		{"host bits", func(c *Config) { c.ServiceCIDR = "10.43.0.1/16" }, "did you mean 10.43.0.0/16"},
		{"overlap", func(c *Config) { c.ServiceCIDR = "10.42.128.0/17"; c.ClusterDNS = "10.42.128.10" }, "overlaps"},
		{"dns outside", func(c *Config) { c.ClusterDNS = "10.44.0.10" }, "outside --service-cidr"},
		{"dns not ip", func(c *Config) { c.ClusterDNS = "dns" }, "--cluster-dns"},
		{"tiny cluster cidr", func(c *Config) { c.ClusterCIDR = "10.42.0.0/28" }, "smaller than one node"},
		{"bad token", func(c *Config) { c.Token = "K10abc::server:x" }, "--token"},
		{"bootstrap token as server token", func(c *Config) { c.Token = "abcdef.0123456789abcdef" }, "--token is a bootstrap token, which joins agents only"},
		{"bootstrap token as agent token", func(c *Config) { c.AgentToken = "abcdef.0123456789abcdef" }, "--agent-token is a bootstrap token"},
		{"unknown scheme", func(c *Config) { c.DatastoreEndpoint = "redis://x" }, "scheme \"redis\""},
		{"url garbage", func(c *Config) { c.DatastoreEndpoint = "postgres://u:secretpw@[::1" }, "--datastore-endpoint"},
		{"postgres no host", func(c *Config) { c.DatastoreEndpoint = "postgres://" }, "no host"},
		{"etcd bad port", func(c *Config) { c.DatastoreEndpoint = "https://h:99999" }, "not a port"},
		{"cluster-init and endpoint", func(c *Config) { c.ClusterInit = true; c.DatastoreEndpoint = "https://h:2379" }, "cannot be used together"},
		{"kubeconfig mode", func(c *Config) { c.WriteKubeconfigMode = "rw" }, "--write-kubeconfig-mode"},
		{"arg without value", func(c *Config) { c.KubeSchedulerArgs = []string{"v"} }, "--kube-scheduler-arg"},
		{"same etcd ports", func(c *Config) { c.EtcdPeerPort = c.EtcdClientPort }, "must differ"},
		{"negative compact interval", func(c *Config) { c.DatastoreCompactInterval = -time.Second }, "--datastore-compact-interval -1s must not be negative"},
		{"negative maintain interval", func(c *Config) { c.DatastoreMaintainInterval = -time.Minute }, "--datastore-maintain-interval"},
		{"agent options", func(c *Config) {
			c.NodeLabels, c.NodeTaints = []string{"site=a"}, []string{"k=v:NoSchedule"}
			c.KubeletArgs, c.KubeProxyArgs = []string{"max-pods=20"}, []string{"proxy-mode=iptables"}
		}, ""},
		{"bad node label", func(c *Config) { c.NodeLabels = []string{"no-value"} }, "--node-label"},
		{"bad node taint", func(c *Config) { c.NodeTaints = []string{"k=v:Sometimes"} }, "--node-taint"},
		{"node external ips", func(c *Config) { c.NodeExternalIPs = []string{"203.0.113.7,2001:db8::7"} }, ""},
		{"bad node external ip", func(c *Config) { c.NodeExternalIPs = []string{"example.com"} }, `--node-external-ip "example.com" is not an IP address`},
		{"disable addons", func(c *Config) { c.Disable = []string{"coredns", "servicelb"} }, ""},
		{"local storage path is the root", func(c *Config) { c.LocalStoragePath = "/" }, "--local-storage-path must be a directory below /"},
		{"disable unknown addon", func(c *Config) { c.Disable = []string{"traefik"} }, `--disable "traefik" is not an add-on (one of coredns, local-storage, metrics-server, servicelb)`},
		{"bad kubelet arg", func(c *Config) { c.KubeletArgs = []string{"v"} }, "--kubelet-arg"},
		{"join", func(c *Config) { c.Server, c.Token = "https://192.0.2.1:6443", fullToken }, ""},
		{"join without token", func(c *Config) { c.Server = "https://192.0.2.1:6443" }, "--server needs --token"},
		{"join with short token", func(c *Config) { c.Server, c.Token = "https://192.0.2.1:6443", "server-secret-0123456789" }, "full K10"},
		{"join not https", func(c *Config) { c.Server, c.Token = "http://192.0.2.1:6443", fullToken }, "not a URL like https://"},
		{"join with a path", func(c *Config) { c.Server, c.Token = "https://192.0.2.1:6443/api", fullToken }, "not a URL like https://"},
		{"join with datastore endpoint", func(c *Config) {
			c.Server, c.Token, c.DatastoreEndpoint = "https://192.0.2.1:6443", fullToken, "postgres://u:p@db/kedge"
		}, "cannot be used with --datastore-endpoint"},
		{"join with sqlite", func(c *Config) {
			c.Server, c.Token, c.DatastoreEndpoint = "https://192.0.2.1:6443", fullToken, "sqlite:///tmp/x.db"
		}, "cannot be used with --datastore-endpoint"},
		{"join and cluster-init", func(c *Config) { c.Server, c.Token, c.ClusterInit = "https://192.0.2.1:6443", fullToken, true }, "use only one"},
		{"restore", func(c *Config) { c.ClusterReset, c.RestorePath = true, "/backup/s.tar.gz" }, ""},
		{"restore without reset", func(c *Config) { c.RestorePath = "/backup/s.tar.gz" }, "--restore-path needs --cluster-reset"},
		{"reset without restore", func(c *Config) { c.ClusterReset = true }, ""},
		{"snapshot schedule", func(c *Config) { c.SnapshotScheduleCron, c.SnapshotRetention = "30 2 * * 1-5", 1 }, ""},
		{"snapshot descriptor", func(c *Config) { c.SnapshotScheduleCron = "@every 6h" }, ""},
		{"bad snapshot schedule", func(c *Config) { c.SnapshotScheduleCron = "0 */12 * *" }, `--snapshot-schedule-cron "0 */12 * *" is not a cron expression`},
		{"bad snapshot field", func(c *Config) { c.SnapshotScheduleCron = "61 * * * *" }, "--snapshot-schedule-cron"},
		{"negative snapshot retention", func(c *Config) { c.SnapshotRetention = -1 }, "--snapshot-retention -1: keep at least 1"},
		{"bad schedule with snapshots disabled", func(c *Config) { c.SnapshotScheduleCron, c.SnapshotRetention, c.DisableSnapshots = "x", -1, true }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.mutate(&c)
			err := c.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "secretpw") {
				t.Fatalf("error leaks a password: %v", err)
			}
		})
	}
}

func TestCompleteDerivesValues(t *testing.T) {
	c := Default()
	c.DataDir = t.TempDir()
	c.NodeIP = "192.0.2.10"
	c.NodeName = "edge-1"
	c.TLSSANs = []string{"edge.example.com", "198.51.100.1"}
	cc, err := c.Complete()
	if err != nil {
		t.Fatal(err)
	}
	if cc.Datastore != DatastoreSQLite || !strings.HasPrefix(cc.KineEndpoint, "sqlite://"+filepath.Join(c.DataDir, "server/db/state.db")+"?") {
		t.Fatalf("datastore = %s %s", cc.Datastore, cc.KineEndpoint)
	}
	if !strings.Contains(cc.KineEndpoint, "_synchronous=FULL") {
		t.Fatalf("sqlite not durable: %s", cc.KineEndpoint)
	}
	if !cc.ServiceIP.Equal(net.ParseIP("10.43.0.1")) {
		t.Fatalf("service IP = %s", cc.ServiceIP)
	}
	for _, want := range []string{"localhost", "edge-1", "kubernetes.default.svc.cluster.local", "edge.example.com"} {
		if !contains(cc.APIServerDNS, want) {
			t.Errorf("DNS SANs %v lack %s", cc.APIServerDNS, want)
		}
	}
	for _, want := range []string{"127.0.0.1", "::1", "192.0.2.10", "10.43.0.1", "198.51.100.1"} {
		found := false
		for _, ip := range cc.APIServerIPs {
			found = found || ip.Equal(net.ParseIP(want))
		}
		if !found {
			t.Errorf("IP SANs %v lack %s", cc.APIServerIPs, want)
		}
	}
	if cc.KubeconfigMode != 0o600 {
		t.Errorf("kubeconfig mode = %o", cc.KubeconfigMode)
	}
}

func TestCompleteChoosesDatastore(t *testing.T) {
	dir := t.TempDir()
	c := Default()
	c.DataDir = dir
	c.NodeIP = "192.0.2.10"

	c.Server, c.Token = "https://192.0.2.1:6443", fullToken
	if cc, err := c.Complete(); err != nil || cc.Datastore != DatastoreEmbeddedEtcd {
		t.Fatalf("--server joins the embedded etcd: %v %v", cc, err)
	}
	c.Server, c.Token = "", ""

	c.ClusterInit = true
	if cc, err := c.Complete(); err != nil || cc.Datastore != DatastoreEmbeddedEtcd {
		t.Fatalf("--cluster-init: %v %v", cc, err)
	}
	c.ClusterInit = false
	if err := os.MkdirAll(filepath.Join(dir, "server/db/etcd"), 0o700); err != nil {
		t.Fatal(err)
	}
	if cc, err := c.Complete(); err != nil || cc.Datastore != DatastoreEmbeddedEtcd {
		t.Fatalf("existing etcd dir must keep using etcd: %v %v", cc, err)
	}
	c.DatastoreEndpoint = "https://127.0.0.1:2379"
	if cc, err := c.Complete(); err != nil || cc.Datastore != DatastoreExternalEtcd {
		t.Fatalf("external etcd: %v %v", cc, err)
	}
	c.DatastoreEndpoint = "mysql://u:p@tcp(db:3306)/kedge"
	if cc, err := c.Complete(); err != nil || cc.Datastore != DatastoreSQL || cc.KineEndpoint != c.DatastoreEndpoint {
		t.Fatalf("mysql: %v %v", cc, err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

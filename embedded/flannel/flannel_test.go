package flannel

import (
	"context"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/kedge/kedge/scripts/testenv"
)

const netnsEnv = "KEDGE_FLANNEL_TEST_NETNS"

// TestReadyAtStartOffline runs Flannel in a network namespace of its own
// (the test re-executes itself under unshare --net) against a server that
// does not answer: with ReadyAtStart it is ready at once, has turned on IP
// forwarding in its namespace and written net-conf.json, and returns nil
// when cancelled.
func TestReadyAtStartOffline(t *testing.T) {
	if os.Getenv(netnsEnv) == "" {
		if os.Geteuid() != 0 {
			t.Skip("needs root for a network namespace")
		}
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "unshare", "--net", os.Args[0], "-test.run=^TestReadyAtStartOffline$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), netnsEnv+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("in its own network namespace: %v\n%s", err, out)
		}
		t.Logf("in its own network namespace:\n%s", out)
		return
	}

	// Here we are alone in a fresh network namespace.
	for _, args := range [][]string{
		{"link", "add", "kedge-test0", "type", "veth", "peer", "name", "kedge-test1"},
		{"addr", "add", "192.0.2.10/24", "dev", "kedge-test0"},
		{"link", "set", "kedge-test0", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubelet.kubeconfig")
	// Loopback is down in the new namespace: nothing answers.
	os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600)
	netConf, err := NetConf("10.42.0.0/16")
	if err != nil {
		t.Fatal(err)
	}
	netConfFile := filepath.Join(dir, "net-conf.json")
	if err := os.WriteFile(netConfFile, netConf, 0o600); err != nil {
		t.Fatal(err)
	}
	f := &Flannel{
		Kubeconfig: kubeconfig, NodeName: "edge-1", NodeIP: net.ParseIP("192.0.2.10"), ClusterCIDR: "10.42.0.0/16",
		NetConfFile: netConfFile, ReadyAtStart: true,
		OnLease: func(Lease) error { t.Error("a lease without a server"); return nil },
		Log:     slog.New(slog.NewTextHandler(os.Stderr, nil)),
	}
	r := testenv.Start(t, f.Run)
	r.WaitReady(10 * time.Second)
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); err != nil || string(b) != "1\n" {
		t.Fatalf("ip_forward = %q (%v)", b, err)
	}
	if err := r.Stop(); err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
}

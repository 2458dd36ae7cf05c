package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kedge/kedge/scripts/e2e/hosts"
	"github.com/kedge/kedge/server/integration/harness"
)

// TestRestoreKeepsAgentsAndPods (issue 12): a server host and an agent
// host running a pod; `kedge snapshot save` on the server host, then one
// more ConfigMap; the server host's disk dies (its /var/lib/kedge/server
// and /etc/kedge are gone). `kedge server --cluster-reset --restore-path`
// with the file and the token on the empty host, and a start: the agent,
// never restarted, reconnects with its credentials (pod logs come through
// its tunnel again), its pod keeps its UID and container (no restart),
// the ConfigMap from before the snapshot is there and the later one is not.
// Here the server is a node too, and its node's data is lost with the
// rest: the restored server knows that node by the password in the
// snapshot, so the node joins again.
func TestRestoreKeepsAgentsAndPods(t *testing.T) { restoreKeepsAgents(t, true, nil) }

// TestEtcdRestoreKeepsAgentsAndPods is the same on embedded etcd, with a
// server that is not a node.
func TestEtcdRestoreKeepsAgentsAndPods(t *testing.T) {
	restoreKeepsAgents(t, false, []string{"--cluster-init"})
}

func restoreKeepsAgents(t *testing.T, serverNode bool, serverArgs []string) {
	kedge := harness.Binary(t)
	server := append([]string{kedge, "server"}, serverArgs...)
	lost := []string{"var/lib/kedge/server", "etc/kedge/kedge.yaml"}
	if serverNode {
		lost = append(lost, "var/lib/kedge/agent")
	} else {
		server = append(server, "--disable-agent")
	}
	net := hosts.NewNetwork(t)
	srvHost := net.AddHost(t, "server")
	agentHost := net.AddHost(t, "agent")
	srv := srvHost.Start(t, server...)
	waitForServer(t, srvHost, srv)
	tokenBytes, err := os.ReadFile(filepath.Join(srvHost.Root, "var/lib/kedge/server/token"))
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(string(tokenBytes))
	stageTestImage(t, agentHost)
	agent := agentHost.Start(t, kedge, "agent", "--server", "https://"+srvHost.IP+":6443", "--token", tok)
	admin := adminClient(t, srvHost)
	procs := []*hosts.Proc{srv, agent}
	waitNodeReady(t, admin, "agent", procs)
	if _, err := admin.CoreV1().Pods("default").Create(t.Context(), testPod("web", "agent"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPodRunning(t, admin, "web", procs)
	before := containersOn(t, admin, "agent")
	putConfigMap(t, admin, "before-the-snapshot")

	// The snapshot goes off the host (here: the test's temp dir, which the
	// hosts share).
	env := []string{"PATH=" + os.Getenv("PATH")}
	out, stderr, err := srvHost.Exec(t, 2*time.Minute, env, kedge, "snapshot", "save", "--dir", t.TempDir())
	if err != nil {
		t.Fatalf("kedge snapshot save: %v\n%s", err, stderr)
	}
	file := strings.TrimSpace(out)
	putConfigMap(t, admin, "after-the-snapshot")

	// The server host's disk dies.
	if err := srv.Stop(20 * time.Second); err != nil {
		t.Fatalf("server stop: %v\n%s", err, srv.Output())
	}
	// (Below the host's bind-mounted directories, not those themselves.)
	for _, d := range lost {
		if err := os.Rename(filepath.Join(srvHost.Root, d), filepath.Join(t.TempDir(), "dead")); err != nil {
			t.Fatal(err)
		}
	}
	if _, stderr, err := srvHost.Exec(t, 2*time.Minute, env, append(server, "--cluster-reset", "--restore-path", file, "--token", tok)...); err != nil {
		t.Fatalf("kedge server --cluster-reset --restore-path: %v\n%s", err, stderr)
	}
	srv = srvHost.Start(t, server...)
	waitForServer(t, srvHost, srv)
	admin = adminClient(t, srvHost)
	procs = []*hosts.Proc{srv, agent}
	waitFor(t, 90*time.Second, "pod logs through the agent's tunnel again", procs, func() bool {
		b, err := admin.CoreV1().Pods("default").GetLogs("web", &corev1.PodLogOptions{}).DoRaw(t.Context())
		return err == nil && strings.Contains(string(b), "testimage listening on :8080")
	})
	waitNodeReady(t, admin, "agent", procs)
	restarted := time.Now()
	if serverNode {
		waitFor(t, 90*time.Second, "the server's own node, its data lost, joined again", procs, func() bool {
			l, err := admin.CoordinationV1().Leases("kube-node-lease").Get(t.Context(), "server", metav1.GetOptions{})
			return err == nil && l.Spec.RenewTime != nil && l.Spec.RenewTime.After(restarted)
		})
	}
	waitFor(t, 90*time.Second, "the kubelet's lease renewed by the restored server", procs, func() bool {
		l, err := admin.CoordinationV1().Leases("kube-node-lease").Get(t.Context(), "agent", metav1.GetOptions{})
		return err == nil && l.Spec.RenewTime != nil && l.Spec.RenewTime.After(restarted)
	})
	// The container the pod had before is the one running on the node.
	id := strings.TrimPrefix(strings.Fields(before["web/web"])[1], "containerd://")
	ps, stderr, err := agentHost.Exec(t, time.Minute, env, kedge, "crictl", "ps", "--name", "web", "-q")
	if err != nil || strings.TrimSpace(ps) != id {
		t.Errorf("containers of web on the node: %q (%v %s), want only %s", ps, err, stderr, id)
	}
	if after := containersOn(t, admin, "agent"); !equalMaps(before, after) {
		t.Errorf("the agent's pods changed across the restore:\nbefore %v\nafter  %v", before, after)
	}
	if !hasConfigMap(t.Context(), admin, "before-the-snapshot") {
		t.Error("the ConfigMap from before the snapshot is not back")
	}
	if hasConfigMap(t.Context(), admin, "after-the-snapshot") {
		t.Error("the ConfigMap created after the snapshot is there")
	}
	if err, done := agent.Exited(); done {
		t.Fatalf("the agent exited (%v); it should have ridden out the restore", err)
	}
}

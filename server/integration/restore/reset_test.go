package restore

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kedge/kedge/embedded/etcdcheck"
	"github.com/kedge/kedge/server/integration/harness"
	"github.com/kedge/kedge/server/snapshot"
)

// TestClusterResetKeepsOneEtcdMember: of a two-server embedded etcd
// cluster, one server is gone for good, and the other alone has no quorum;
// `kedge server --cluster-reset` (without --restore-path) makes it a
// one-member cluster with its data, a copy of its etcd dir kept aside, and
// it serves again.
func TestClusterResetKeepsOneEtcdMember(t *testing.T) {
	aDir := t.TempDir()
	ac := harness.NewConfig(t, aDir)
	ac.ClusterInit = true
	a := harness.StartBinary(t, ac)
	createConfigMaps(t, a.Client, "kept", 3)
	tok, err := os.ReadFile(filepath.Join(aDir, "server/token"))
	if err != nil {
		t.Fatal(err)
	}
	bc := harness.NewConfig(t, t.TempDir())
	bc.NodeName = "kedge-test-2"
	bc.Server, bc.Token = "https://127.0.0.1:"+strconv.Itoa(ac.HTTPSListenPort), strings.TrimSpace(string(tok))
	b := harness.StartBinary(t, bc)
	if n := members(t, aDir, ac.EtcdClientPort); n != 2 {
		t.Fatalf("%d etcd members after the second server joined, want 2", n)
	}
	b.Stop(t)
	a.Stop(t)

	out, err := exec.Command(harness.Binary(t), append(harness.Args(ac), "--cluster-reset")...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "one-member cluster") {
		t.Fatalf("kedge server --cluster-reset: %v\n%s", err, out)
	}
	if kept, _ := filepath.Glob(filepath.Join(aDir, "server/db/etcd.before-reset-*/member/wal")); len(kept) != 1 {
		t.Errorf("no copy of the etcd dir kept aside: %v", kept)
	}
	ac.ClusterInit = false // later starts use the etcd dir without the flag
	a = harness.StartBinary(t, ac)
	for _, name := range []string{"kept-0", "kept-1", "kept-2"} {
		if _, err := a.Client.CoreV1().ConfigMaps("default").Get(t.Context(), name, metav1.GetOptions{}); err != nil {
			t.Errorf("%s after the reset: %v", name, err)
		}
	}
	createConfigMaps(t, a.Client, "after", 1)
	if n := members(t, aDir, ac.EtcdClientPort); n != 1 {
		t.Errorf("%d etcd members after the reset, want 1", n)
	}

	// On a SQLite server there is nothing to reset: one line, non-zero exit.
	sc := harness.NewConfig(t, t.TempDir())
	if out, err := exec.Command(harness.Binary(t), append(harness.Args(sc), "--cluster-reset")...).CombinedOutput(); err == nil || !strings.Contains(string(out), "has none") {
		t.Errorf("--cluster-reset on a data dir without etcd: %v\n%s", err, out)
	}
}

// members counts the members of the etcd cluster of the server in dataDir.
func members(t *testing.T, dataDir string, port int) int {
	t.Helper()
	tls := filepath.Join(dataDir, "server/tls/etcd")
	cli, err := etcdcheck.Client(t.Context(), etcdcheck.Target{Endpoints: []string{snapshot.EtcdEndpoint(port)},
		CAFile: filepath.Join(tls, "server-ca.crt"), CertFile: filepath.Join(tls, "client.crt"), KeyFile: filepath.Join(tls, "client.key")})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	resp, err := cli.MemberList(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return len(resp.Members)
}

// TestHARestoreAndRejoin follows README's procedure for several servers:
// a snapshot of the first of two embedded etcd servers, both stopped, the
// snapshot restored on the first (into a new data dir), which starts as a
// one-member cluster; the second, its data dir wiped, re-joins with
// --server and the cluster has two members again, with the snapshot's
// objects.
func TestHARestoreAndRejoin(t *testing.T) {
	ac := harness.NewConfig(t, t.TempDir())
	ac.ClusterInit = true
	a := harness.StartBinary(t, ac)
	createConfigMaps(t, a.Client, "kept", 2)
	tok, err := os.ReadFile(filepath.Join(ac.DataDir, "server/token"))
	if err != nil {
		t.Fatal(err)
	}
	bc := harness.NewConfig(t, t.TempDir())
	bc.NodeName = "kedge-test-2"
	bc.Server, bc.Token = "https://127.0.0.1:"+strconv.Itoa(ac.HTTPSListenPort), strings.TrimSpace(string(tok))
	b := harness.StartBinary(t, bc)
	out, err := exec.Command(harness.Binary(t), "snapshot", "save", "--data-dir", ac.DataDir, "--dir", t.TempDir(), "--node-name", "a",
		"--etcd-client-port", strconv.Itoa(ac.EtcdClientPort)).Output()
	if err != nil {
		t.Fatalf("kedge snapshot save: %v %s", err, exitOutput(err))
	}
	file := strings.TrimSpace(string(out))
	b.Stop(t)
	a.Stop(t)

	rc := ac
	rc.DataDir = t.TempDir()
	rc.WriteKubeconfig = filepath.Join(rc.DataDir, "admin.yaml")
	restoreArgs := append(harness.Args(rc), "--cluster-reset", "--restore-path", file, "--token", strings.TrimSpace(string(tok)))
	if out, err := exec.Command(harness.Binary(t), restoreArgs...).CombinedOutput(); err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	a = harness.StartBinary(t, rc)
	if n := members(t, rc.DataDir, rc.EtcdClientPort); n != 1 {
		t.Fatalf("%d etcd members after the restore, want 1", n)
	}
	bc.DataDir = t.TempDir()
	bc.WriteKubeconfig = filepath.Join(bc.DataDir, "admin.yaml")
	b = harness.StartBinary(t, bc)
	if n := members(t, rc.DataDir, rc.EtcdClientPort); n != 2 {
		t.Errorf("%d etcd members after the second server re-joined, want 2", n)
	}
	for _, c := range []*harness.Server{a, b} {
		if _, err := c.Client.CoreV1().ConfigMaps("default").Get(t.Context(), "kept-1", metav1.GetOptions{}); err != nil {
			t.Errorf("kept-1 through %s: %v", c.Config.NodeName, err)
		}
	}
}

// Package restore checks kedge's backups end to end with the real binary:
// a snapshot of a running server (SQLite, and embedded etcd with
// --cluster-init), restored with `kedge server --cluster-reset
// --restore-path` onto a new, empty data dir given the file and the
// token, brings back the objects of the snapshot's time and not the later
// ones, under the same CA, so the old join token (and the agents that
// pinned it) still work. Scheduled snapshots are checked in-process.
package restore

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kedge/kedge/server/integration/harness"
)

func TestSnapshotRestoresOntoANewHost(t *testing.T) { roundTrip(t, false) }

func TestEtcdSnapshotRestoresOntoANewHost(t *testing.T) { roundTrip(t, true) }

func createConfigMaps(t *testing.T, client kubernetes.Interface, prefix string, n int) {
	t.Helper()
	for i := range n {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", prefix, i), Namespace: "default"}, Data: map[string]string{"k": prefix}}
		if _, err := client.CoreV1().ConfigMaps("default").Create(t.Context(), cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// roundTrip: set A of ConfigMaps, snapshot, set B, stop; restore into a
// fresh data dir with the file and the token; A is back, B is not, the
// CAs and token are the same. A wrong token is refused first, leaving the
// new data dir absent.
func roundTrip(t *testing.T, etcd bool) {
	oldDir := t.TempDir()
	oc := harness.NewConfig(t, oldDir)
	oc.ClusterInit = etcd
	old := harness.StartBinary(t, oc)
	createConfigMaps(t, old.Client, "a", 5)
	snapDir := t.TempDir()
	save := exec.Command(harness.Binary(t), "snapshot", "save", "--data-dir", oldDir, "--dir", snapDir, "--node-name", "old",
		"--etcd-client-port", strconv.Itoa(oc.EtcdClientPort))
	out, err := save.Output()
	if err != nil {
		t.Fatalf("kedge snapshot save: %v %s", err, exitOutput(err))
	}
	file := strings.TrimSpace(string(out))
	createConfigMaps(t, old.Client, "b", 5)
	old.Stop(t)
	tok, err := os.ReadFile(filepath.Join(oldDir, "server/token"))
	if err != nil {
		t.Fatal(err)
	}

	// The device died: a new, empty data dir, the snapshot file and the token.
	newDir := filepath.Join(t.TempDir(), "kedge")
	c := harness.NewConfig(t, newDir)
	c.ClusterInit = etcd
	args := append(harness.Args(c), "--cluster-reset", "--restore-path", file)
	wrong := append(args, "--token", "another-clusters-secret-0123")
	if out, err := exec.Command(harness.Binary(t), wrong...).CombinedOutput(); err == nil || !strings.Contains(string(out), "--token is not this snapshot's") {
		t.Fatalf("a restore with a wrong token: %v\n%s", err, out)
	}
	if entries, _ := os.ReadDir(newDir); len(entries) != 0 {
		t.Fatalf("a refused restore left %v in the new data dir", entries)
	}
	args = append(args, "--token", strings.TrimSpace(string(tok)))
	if out, err := exec.Command(harness.Binary(t), args...).CombinedOutput(); err != nil || !strings.Contains(string(out), "restored") {
		t.Fatalf("kedge server --cluster-reset --restore-path: %v\n%s", err, out)
	}
	datastore := "server/db/state.db"
	if etcd {
		datastore = "server/db/etcd/member/wal"
	}
	if _, err := os.Stat(filepath.Join(newDir, datastore)); err != nil {
		t.Fatalf("the restored datastore: %v", err)
	}
	for _, f := range []string{"server/tls/server-ca.crt", "server/tls/client-ca.key", "server/token"} {
		a, _ := os.ReadFile(filepath.Join(oldDir, f))
		b, err := os.ReadFile(filepath.Join(newDir, f))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs after the restore (%v)", f, err)
		}
	}
	restored := harness.StartBinary(t, c)
	for i := range 5 {
		got, err := restored.Client.CoreV1().ConfigMaps("default").Get(t.Context(), fmt.Sprintf("a-%d", i), metav1.GetOptions{})
		if err != nil || got.Data["k"] != "a" {
			t.Errorf("ConfigMap a-%d after the restore: %v %v", i, got, err)
		}
		if _, err := restored.Client.CoreV1().ConfigMaps("default").Get(t.Context(), fmt.Sprintf("b-%d", i), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("ConfigMap b-%d, created after the snapshot, after the restore: %v, want NotFound", i, err)
		}
	}
	// The restored cluster takes writes.
	createConfigMaps(t, restored.Client, "c", 1)

	// Restoring again over this data dir keeps the database that was there.
	restored.Stop(t)
	if out, err := exec.Command(harness.Binary(t), args...).CombinedOutput(); err != nil {
		t.Fatalf("a second restore: %v\n%s", err, out)
	}
	kept := "server/db/state.db.before-restore-*"
	if etcd {
		kept = "server/db/etcd.before-restore-*"
	}
	if aside, _ := filepath.Glob(filepath.Join(newDir, kept)); len(aside) == 0 {
		t.Errorf("the database that was there is not kept aside (%s)", kept)
	}
}

func exitOutput(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

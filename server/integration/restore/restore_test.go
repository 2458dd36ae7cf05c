// Package restore checks kedge's backups end to end with the real binary:
// a snapshot of a running server, restored with `kedge server
// --cluster-reset --restore-path` onto a new, empty data dir, brings the
// cluster's objects back under the same CA, so the old join token (and the
// agents that pinned it) still work.
package restore

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kedge/kedge/server/integration/harness"
)

func TestSnapshotRestoresOntoANewHost(t *testing.T) {
	oldDir := t.TempDir()
	old := harness.StartBinary(t, harness.NewConfig(t, oldDir))
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "before-the-crash", Namespace: "default"}, Data: map[string]string{"k": "v"}}
	if _, err := old.Client.CoreV1().ConfigMaps("default").Create(t.Context(), cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	snapDir := t.TempDir()
	out, err := exec.Command(harness.Binary(t), "snapshot", "save", "--data-dir", oldDir, "--dir", snapDir, "--node-name", "old").Output()
	if err != nil {
		t.Fatalf("kedge snapshot save: %v", err)
	}
	file := strings.TrimSpace(string(out))
	old.Stop(t)

	// The device died: a new, empty data dir, the snapshot file and the token.
	newDir := t.TempDir()
	c := harness.NewConfig(t, newDir)
	args := append(harness.Args(c), "--cluster-reset", "--restore-path", file)
	if out, err := exec.Command(harness.Binary(t), args...).CombinedOutput(); err != nil || !strings.Contains(string(out), "restored") {
		t.Fatalf("kedge server --cluster-reset --restore-path: %v\n%s", err, out)
	}
	for _, f := range []string{"server/tls/server-ca.crt", "server/tls/client-ca.key", "server/token"} {
		a, _ := os.ReadFile(filepath.Join(oldDir, f))
		b, err := os.ReadFile(filepath.Join(newDir, f))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs after the restore (%v)", f, err)
		}
	}
	restored := harness.StartBinary(t, c)
	got, err := restored.Client.CoreV1().ConfigMaps("default").Get(t.Context(), "before-the-crash", metav1.GetOptions{})
	if err != nil || got.Data["k"] != "v" {
		t.Fatalf("the ConfigMap after the restore: %v %v", got, err)
	}

	// Restoring again over this data dir keeps the database that was there.
	restored.Stop(t)
	if out, err := exec.Command(harness.Binary(t), args...).CombinedOutput(); err != nil {
		t.Fatalf("a second restore: %v\n%s", err, out)
	}
	if aside, _ := filepath.Glob(filepath.Join(newDir, "server/db/state.db.before-restore-*")); len(aside) == 0 {
		t.Error("the database that was there is not kept aside")
	}
}

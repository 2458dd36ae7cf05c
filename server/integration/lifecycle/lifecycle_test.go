// Package lifecycle checks how `kedge server` starts and stops as a process:
// systemd readiness, the ready line, file modes, a clean SIGTERM shutdown
// with an intact SQLite database, and --version.
package lifecycle

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/kedge/kedge/scripts/testenv"
	"github.com/kedge/kedge/server/certificate"
	"github.com/kedge/kedge/server/integration/harness"
)

func TestStartNotifyAndCleanStop(t *testing.T) {
	dataDir := t.TempDir()
	c := harness.NewConfig(t, dataDir)

	notify := testenv.ListenNotify(t)

	var out testenv.Output
	args := append(harness.Args(c), "--write-kubeconfig-mode", "0640")
	cmd := exec.Command(harness.Binary(t), args...)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+notify.Path)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	select {
	case <-notify.Ready():
	case err := <-exited:
		t.Fatalf("kedge exited before notifying systemd: %v\n%s", err, out.String())
	case <-time.After(90 * time.Second):
		t.Fatalf("no READY=1 within 90s\n%s", out.String())
	}
	// READY must mean the API serves: /readyz answers at once, no polling.
	rc := readyz(t, c.WriteKubeconfig)
	if rc != nil {
		t.Fatalf("READY=1 sent but /readyz fails: %v", rc)
	}
	readyLine := ""
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.Contains(l, "kedge server is ready") {
			readyLine = l
		}
	}
	if !strings.Contains(readyLine, "kubeconfig="+c.WriteKubeconfig) || !strings.Contains(readyLine, "kedge agent --server https://") {
		t.Fatalf("ready line = %q, want the kubeconfig path and the agent join command", readyLine)
	}

	for path, want := range map[string]os.FileMode{
		c.WriteKubeconfig:                                  0o640,
		filepath.Join(dataDir, "server/token"):             0o600,
		filepath.Join(dataDir, "server/tls/server-ca.key"): 0o600,
		filepath.Join(dataDir, "server/db"):                0o700 | os.ModeDir,
	} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != want {
			t.Errorf("%s has mode %v, want %v", path, st.Mode(), want)
		}
	}
	token, _ := os.ReadFile(filepath.Join(dataDir, "server/token"))
	secret := strings.TrimSpace(string(token))
	if i := strings.LastIndex(secret, ":"); i >= 0 {
		secret = secret[i+1:]
	}
	if strings.Contains(out.String(), secret) {
		t.Fatal("the server token's secret appears in the log")
	}

	// `kedge certificate check` on the running server's data dir lists its
	// certificates, a year left on the leaves just issued.
	certs, err := exec.Command(harness.Binary(t), "certificate", "check", "--data-dir", dataDir, "--output", "json").Output()
	if err != nil {
		t.Fatalf("kedge certificate check: %v", err)
	}
	var listed []certificate.Info
	if err := json.Unmarshal(certs, &listed); err != nil {
		t.Fatalf("kedge certificate check -o json: %v\n%s", err, certs)
	}
	serving := filepath.Join(dataDir, "server/tls/serving-kube-apiserver.crt")
	if !slices.ContainsFunc(listed, func(c certificate.Info) bool { return c.File == serving && c.DaysLeft >= 363 }) {
		t.Errorf("kedge certificate check does not list %s with a year left:\n%s", serving, certs)
	}

	// `kedge snapshot save` copies the running server's database; ls lists it.
	saved, err := exec.Command(harness.Binary(t), "snapshot", "save", "--data-dir", dataDir, "--node-name", "lifecycle").Output()
	if err != nil {
		t.Fatalf("kedge snapshot save: %v", err)
	}
	if path := strings.TrimSpace(string(saved)); !strings.HasPrefix(filepath.Base(path), "on-demand-lifecycle-") {
		t.Errorf("kedge snapshot save printed %q", saved)
	} else if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 || st.Size() < 4096 {
		t.Errorf("snapshot %s: %v %v", path, st, err)
	}
	if ls, err := exec.Command(harness.Binary(t), "snapshot", "ls", "--data-dir", dataDir).Output(); err != nil || !strings.Contains(string(ls), "on-demand-lifecycle-") {
		t.Errorf("kedge snapshot ls: %v\n%s", err, ls)
	}

	stopStart := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, out.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("not stopped within 15s of SIGTERM")
	}
	t.Logf("stopped %.1fs after SIGTERM", time.Since(stopStart).Seconds())
	if !strings.Contains(out.String(), "kedge server stopped") {
		t.Fatalf("no clean-stop line in the log:\n%s", out.String())
	}

	db, err := sql.Open("sqlite3", filepath.Join(dataDir, "server/db/state.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var check string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check = %q, %v", check, err)
	}
	var rows int
	if err := db.QueryRow("SELECT COUNT(*) FROM kine WHERE name LIKE '/registry/namespaces/%'").Scan(&rows); err != nil || rows < 4 {
		t.Fatalf("namespaces in SQLite after stop: %d, %v", rows, err)
	}
}

func readyz(t *testing.T, kubeconfig string) error {
	t.Helper()
	cmd := exec.Command(harness.Binary(t), "kubectl", "--kubeconfig", kubeconfig, "get", "--raw", "/readyz")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	cmd = exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		return &readyzError{string(out), err}
	}
	return nil
}

type readyzError struct {
	out string
	err error
}

func (e *readyzError) Error() string { return e.out + ": " + e.err.Error() }

func TestVersion(t *testing.T) {
	out, err := exec.Command(harness.Binary(t), "--version").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), "kedge ") || !strings.Contains(string(out), "Kubernetes v1.") {
		t.Fatalf("--version = %q", out)
	}
}

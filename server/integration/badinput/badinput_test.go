// Package badinput checks that bad input to `kedge server` ends in one clear
// line and a non-zero exit within 30 s, and never changes an existing data dir.
package badinput

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kedge/kedge/server/integration/harness"
)

// snapshot maps every regular file under dir to the hash of its content.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out[path] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type result struct {
	code     int
	output   string
	duration time.Duration
}

func runKedge(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, harness.Binary(t), args...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("kedge %v did not exit within 30s; output:\n%s", args, out)
	}
	var exitErr *exec.ExitError
	code := 0
	if errors.As(err, &exitErr) {
		code = exitErr.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code: code, output: string(out), duration: time.Since(start)}
}

func TestBadInput(t *testing.T) {
	dataDir := t.TempDir()
	c := harness.NewConfig(t, dataDir)
	srv := harness.StartBinary(t, c)
	srv.Stop(t)
	before := snapshot(t, dataDir)
	if len(before) < 10 {
		t.Fatalf("data dir has only %d files after a start", len(before))
	}
	base := harness.Args(c)

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port

	notEtcd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not etcd", http.StatusTeapot)
	}))
	defer notEtcd.Close()

	closedPort := strconv.Itoa(harness.FreePort(t))
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	badYAML := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(badYAML, []byte("data-dir: [unclosed\n"), 0o600)
	unknownKey := filepath.Join(t.TempDir(), "unknown.yaml")
	os.WriteFile(unknownKey, []byte("data-dir: /tmp/x\nno-such-option: 1\n"), 0o600)

	cases := []struct {
		name      string
		args      []string
		code      int
		want      string
		oneLine   bool
		forbidden string
	}{
		{"unknown flag", []string{"--no-such-flag"}, 2, "flag provided but not defined: -no-such-flag", true, ""},
		{"malformed cidr", []string{"--cluster-cidr", "10.42.0.0/99"}, 1, "--cluster-cidr \"10.42.0.0/99\" is not a CIDR", true, ""},
		{"malformed url", []string{"--datastore-endpoint", "postgres://kedge:secretpw@[::1"}, 1, "--datastore-endpoint is not a valid URL", true, "secretpw"},
		{"data dir under a file", []string{"--data-dir", filepath.Join(notADir, "kedge")}, 1, "is not writable: not a directory", true, ""},
		{"port in use", []string{"--https-listen-port", strconv.Itoa(busyPort)}, 1, "--https-listen-port: cannot listen on 127.0.0.1:" + strconv.Itoa(busyPort), true, ""},
		{"unreachable etcd", []string{"--datastore-endpoint", "https://127.0.0.1:" + closedPort}, 1, "external etcd did not accept a write", false, ""},
		{"not an etcd", []string{"--datastore-endpoint", notEtcd.URL}, 1, "external etcd did not accept a write", false, ""},
		{"unreachable postgres", []string{"--datastore-endpoint", "postgres://kedge:secretpw@127.0.0.1:" + closedPort + "/kedge?sslmode=disable"}, 1, "kine: ", false, "secretpw"},
		{"corrupt config file", []string{"--config", badYAML}, 1, "is not valid YAML", true, ""},
		{"missing resolv-conf", []string{"--resolv-conf", "/nonexistent/resolv.conf"}, 1, "--resolv-conf: stat /nonexistent/resolv.conf", true, ""},
		{"unknown config key", []string{"--config", unknownKey}, 1, "unknown key \"no-such-option\"", true, ""},
		{"malformed token", []string{"--token", "K10abc::server:short"}, 1, "--token: token CA hash", true, "short"},
		{"different token", []string{"--token", "0123456789abcdef-other"}, 1, "--token differs from the token stored", true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := runKedge(t, append(append([]string{}, base...), tc.args...)...)
			lines := strings.Split(strings.TrimRight(r.output, "\n"), "\n")
			last := lines[len(lines)-1]
			if r.code != tc.code {
				t.Errorf("exit code = %d, want %d; output:\n%s", r.code, tc.code, r.output)
			}
			if !strings.HasPrefix(last, "kedge: ") || !strings.Contains(last, tc.want) {
				t.Errorf("last line = %q, want a kedge: line containing %q", last, tc.want)
			}
			if tc.oneLine && len(lines) != 1 {
				t.Errorf("want exactly one line, got:\n%s", r.output)
			}
			if tc.forbidden != "" && strings.Contains(r.output, tc.forbidden) {
				t.Errorf("output leaks %q:\n%s", tc.forbidden, r.output)
			}
			if after := snapshot(t, dataDir); !equal(before, after) {
				t.Errorf("data dir changed: %s", diff(before, after))
			}
		})
	}
}

// TestReadOnlyDataDir mounts a read-only tmpfs as the data dir's parent.
func TestReadOnlyDataDir(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_RDONLY, "size=1m"); err != nil {
		t.Fatalf("mount read-only tmpfs (tests run as root): %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	c := harness.NewConfig(t, filepath.Join(dir, "kedge"))
	r := runKedge(t, harness.Args(c)...)
	if r.code != 1 || strings.Count(r.output, "\n") != 1 || !strings.Contains(r.output, "is not writable: read-only file system") {
		t.Fatalf("exit %d, output %q", r.code, r.output)
	}
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func diff(a, b map[string]string) string {
	var out []string
	for k, v := range a {
		if w, ok := b[k]; !ok {
			out = append(out, "removed "+k)
		} else if w != v {
			out = append(out, "changed "+k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, "added "+k)
		}
	}
	return strings.Join(out, ", ")
}

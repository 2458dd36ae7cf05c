//go:build release

// Package releasecheck checks the files scripts/release wrote to dist/
// (KEDGE_DIST): each binary is static for its architecture, matches its
// published sha256 and its .xz, and really runs there. The ARM binaries run
// under qemu-user-static (apt package qemu-user-static); no binfmt is needed.
package releasecheck

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kedge/kedge/scripts/elfcheck"
	"github.com/kedge/kedge/server/integration/harness"
)

var arches = []string{"amd64", "arm64", "armv7"}

// emulator returns the command prefix that runs arch's binaries here.
func emulator(arch string) []string {
	switch arch {
	case "arm64":
		return []string{"qemu-aarch64-static"}
	case "armv7":
		return []string{"qemu-arm-static"}
	}
	return nil
}

func dist(t *testing.T) string {
	dir := os.Getenv("KEDGE_DIST")
	if dir == "" {
		t.Fatal("KEDGE_DIST is not set (scripts/release-test sets it)")
	}
	return dir
}

func command(ctx context.Context, arch, bin string, args ...string) *exec.Cmd {
	argv := append(emulator(arch), append([]string{bin}, args...)...)
	return exec.CommandContext(ctx, argv[0], argv[1:]...)
}

func TestArtifacts(t *testing.T) {
	d := dist(t)
	if _, err := os.Stat(filepath.Join(d, "install.sh")); err != nil {
		t.Errorf("install.sh: %v", err)
	}
	for _, arch := range arches {
		t.Run(arch, func(t *testing.T) {
			bin := filepath.Join(d, "kedge-"+arch)
			if err := elfcheck.Static(bin, arch); err != nil {
				t.Error(err)
			}
			out, err := exec.Command("file", "-b", bin).Output()
			if err != nil || !strings.Contains(string(out), "statically linked") {
				t.Errorf("file says %q (%v)", out, err)
			}
			sums := readSums(t, filepath.Join(d, "sha256sum-"+arch+".txt"))
			for _, name := range []string{"kedge-" + arch, "kedge-" + arch + ".xz"} {
				if got := fileSum(t, filepath.Join(d, name)); got != sums[name] {
					t.Errorf("%s: sha256 %s, list says %q", name, got, sums[name])
				}
			}
			unxz, err := exec.Command("xz", "-dc", bin+".xz").Output()
			if err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(bin)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(unxz, raw) {
				t.Error("the .xz does not decompress to the binary")
			}

			start := time.Now()
			out, err = command(t.Context(), arch, bin, "--version").CombinedOutput()
			if err != nil {
				t.Fatalf("--version: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), "Kubernetes v1.") {
				t.Errorf("--version printed %q, no Kubernetes version", out)
			}
			t.Logf("%s --version in %.1f s: %s", arch, time.Since(start).Seconds(), strings.TrimSpace(string(out)))
		})
	}
}

// TestServerUnderEmulation starts each ARM binary's server (SQLite, no
// agent) under qemu, waits for /readyz and lists namespaces with the same
// binary's kubectl; on armv7 embedded etcd is refused in one line.
func TestServerUnderEmulation(t *testing.T) {
	d := dist(t)
	for _, arch := range []string{"arm64", "armv7"} {
		t.Run(arch, func(t *testing.T) {
			bin := filepath.Join(d, "kedge-"+arch)
			dir := t.TempDir()
			port, apiPort := harness.FreePort(t), harness.FreePort(t)
			kubeconfig := filepath.Join(dir, "kubeconfig")
			ctx, cancel := context.WithCancel(t.Context())
			srv := command(ctx, arch, bin, "server", "--disable-agent",
				"--data-dir", filepath.Join(dir, "data"), "--write-kubeconfig", kubeconfig,
				"--bind-address", "127.0.0.1",
				"--https-listen-port", fmt.Sprint(port), "--apiserver-port", fmt.Sprint(apiPort))
			var log bytes.Buffer
			srv.Stdout, srv.Stderr = &log, &log
			srv.Cancel = func() error { return srv.Process.Signal(os.Interrupt) }
			srv.WaitDelay = 30 * time.Second
			start := time.Now()
			if err := srv.Start(); err != nil {
				t.Fatal(err)
			}
			// exited is closed when the server is gone; exitErr is then its error.
			exited := make(chan struct{})
			var exitErr error
			go func() { exitErr = srv.Wait(); close(exited) }()
			t.Cleanup(func() {
				cancel()
				<-exited
				if t.Failed() {
					t.Logf("server log:\n%s", tail(log.String(), 60))
				}
			})

			client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
			deadline := time.Now().Add(5 * time.Minute)
			for {
				resp, err := client.Get(fmt.Sprintf("https://127.0.0.1:%d/readyz", port))
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						break
					}
				}
				select {
				case <-exited:
					t.Fatalf("server exited before ready: %v", exitErr)
				case <-time.After(250 * time.Millisecond):
				}
				if time.Now().After(deadline) {
					t.Fatal("no /readyz within 5 minutes")
				}
			}
			ready := time.Since(start)
			start = time.Now()
			out, err := command(t.Context(), arch, bin, "kubectl", "--kubeconfig", kubeconfig, "get", "ns", "-o", "name").CombinedOutput()
			if err != nil || !strings.Contains(string(out), "namespace/kube-system") {
				t.Fatalf("kubectl get ns: %v\n%s", err, out)
			}
			t.Logf("%s under qemu: server start to /readyz %.1f s; kubectl get ns %.1f s", arch, ready.Seconds(), time.Since(start).Seconds())
		})
	}

	t.Run("armv7 refuses embedded etcd", func(t *testing.T) {
		out, err := command(t.Context(), "armv7", filepath.Join(d, "kedge-armv7"), "server", "--cluster-init",
			"--data-dir", filepath.Join(t.TempDir(), "data")).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "not supported on 32-bit") {
			t.Fatalf("err %v, output:\n%s", err, out)
		}
		t.Logf("armv7 --cluster-init: %s", strings.TrimSpace(string(out)))
	})
}

func readSums(t *testing.T, path string) map[string]string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sums := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if sum, name, ok := strings.Cut(sc.Text(), "  "); ok {
			sums[name] = sum
		}
	}
	return sums
}

func fileSum(t *testing.T, path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Package testenv holds small helpers that tests of every layer share:
// polling with a deadline, golden files, running a component for the
// length of a test, collecting output, systemd readiness notifications,
// unique names and removing what processes mounted. Product code never
// imports it (layers_test.go).
package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// RandomID returns 8 hex characters for unique names of test resources.
func RandomID(t testing.TB) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// UnmountUnder detaches every mount at or below dirs, deepest first.
func UnmountUnder(t testing.TB, dirs ...string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var targets []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		for _, d := range dirs {
			if f[4] == d || strings.HasPrefix(f[4], d+"/") {
				targets = append(targets, f[4])
			}
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(targets)))
	for _, m := range targets {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", m, err)
		}
	}
}

// Output collects a process's stdout and stderr while a test reads them.
type Output struct {
	mu sync.Mutex
	b  strings.Builder
}

// Write implements io.Writer.
func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

// String returns everything written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// RemoveCgroupTree removes dir and every cgroup below it, deepest first.
// The cgroups must hold no processes.
func RemoveCgroupTree(t testing.TB, dir string) {
	var dirs []string
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, d := range dirs {
		if err := syscall.Rmdir(d); err != nil && !os.IsNotExist(err) {
			t.Errorf("remove cgroup %s: %v", d, err)
		}
	}
}

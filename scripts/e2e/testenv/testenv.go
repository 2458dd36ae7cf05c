// Package testenv holds small helpers that tests running real processes
// share: unique names and removing what those processes mounted.
package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"sort"
	"strings"
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

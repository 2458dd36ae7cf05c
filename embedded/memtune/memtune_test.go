package memtune

import (
	"os"
	"strings"
	"testing"
)

func TestParseMapsLine(t *testing.T) {
	cases := []struct {
		line       string
		ok         bool
		start, end uintptr
		path       string
	}{
		{"00400000-04b00000 r-xp 00000000 fd:00 1234 /usr/local/bin/kedge", true, 0x400000, 0x4b00000, "/usr/local/bin/kedge"},
		{"7f00-8f00 r--p 00000000 fd:00 1 /path with space/kedge", true, 0x7f00, 0x8f00, "/path with space/kedge"},
		{"0a000000-0a100000 rw-p 00000000 fd:00 1234 /usr/local/bin/kedge", false, 0, 0, ""},
		{"7ffd0000-7ffd1000 rw-p 00000000 00:00 0 [stack]", false, 0, 0, ""},
		{"7ffd0000-7ffd1000 r--p 00000000 00:00 0", false, 0, 0, ""},
		{"garbage", false, 0, 0, ""},
	}
	for _, tc := range cases {
		start, end, path, ok := parseMapsLine(tc.line)
		if ok != tc.ok || (ok && (start != tc.start || end != tc.end || path != tc.path)) {
			t.Errorf("parseMapsLine(%q) = %x %x %q %v", tc.line, start, end, path, ok)
		}
	}
}

// TestReleaseExecutablePages runs on the test binary itself: it must find
// its executable mappings and the kernel must accept the advice.
func TestReleaseExecutablePages(t *testing.T) {
	n, err := ReleaseExecutablePages()
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no executable mapping found")
	}
	maps, _ := os.ReadFile("/proc/self/maps")
	if !strings.Contains(string(maps), "r-xp") {
		t.Fatal("process no longer has an executable mapping")
	}
}

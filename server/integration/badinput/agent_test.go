package badinput

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAgentBadInput: malformed agent flags end in one line and a non-zero
// exit before anything is written or sent.
func TestAgentBadInput(t *testing.T) {
	dataDir := t.TempDir()
	tok := "K10" + strings.Repeat("0", 64) + "::node:0123456789abcdef"
	base := []string{"agent", "--data-dir", dataDir, "--run-dir", filepath.Join(t.TempDir(), "run"), "--registries-file", os.DevNull}
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown flag", []string{"--server", "https://192.0.2.1:6443", "--token", tok, "--bogus"}, 2, "flag provided but not defined: -bogus"},
		{"no server", []string{"--token", tok}, 1, "--server is required"},
		{"http server", []string{"--server", "http://192.0.2.1:6443", "--token", tok}, 1, "is not an https:// URL"},
		{"no token", []string{"--server", "https://192.0.2.1:6443"}, 1, "--token or --token-file is required"},
		{"malformed token", []string{"--server", "https://192.0.2.1:6443", "--token", "K10zz::node:0123456789abcdef"}, 1, "--token: token CA hash"},
		{"missing token file", []string{"--server", "https://192.0.2.1:6443", "--token-file", filepath.Join(dataDir, "nope")}, 1, "--token-file:"},
		{"bad taint", []string{"--server", "https://192.0.2.1:6443", "--token", tok, "--node-taint", "a=b:Sometimes"}, 1, "--node-taint"},
		{"bad kubelet arg", []string{"--server", "https://192.0.2.1:6443", "--token", tok, "--kubelet-arg", "v"}, 1, "--kubelet-arg"},
		{"bad lb port", []string{"--server", "https://192.0.2.1:6443", "--token", tok, "--lb-port", "70000"}, 1, "--lb-port 70000 is not a port"},
		{"missing resolv-conf", []string{"--server", "https://192.0.2.1:6443", "--token", tok, "--resolv-conf", filepath.Join(dataDir, "nope")}, 1, "--resolv-conf: open "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := runKedge(t, append(append([]string{}, base...), tc.args...)...)
			out := strings.TrimRight(r.output, "\n")
			if r.code != tc.code || strings.Contains(out, "\n") || !strings.HasPrefix(out, "kedge: ") || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d, output %q; want exit %d and one kedge: line with %q", r.code, r.output, tc.code, tc.want)
			}
			if entries, _ := os.ReadDir(dataDir); len(entries) != 0 {
				t.Fatalf("bad input wrote to the data dir: %v", entries)
			}
		})
	}
}

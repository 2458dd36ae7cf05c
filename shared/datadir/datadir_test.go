package datadir

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestLayoutIsDisjointAndUnderItsRoots: every path of each side is
// distinct and lies under the data dir (the agent's runtime state under
// the run dir), so two mechanisms never share a file by accident.
func TestLayoutIsDisjointAndUnderItsRoots(t *testing.T) {
	const data, run = "/data", "/run/k"
	seen := map[string]string{}
	check := func(side string, v any, under func(string) bool) {
		rv := reflect.ValueOf(v)
		for i := range rv.NumField() {
			name := side + "." + rv.Type().Field(i).Name
			p := rv.Field(i).String()
			if p == "" || !filepath.IsAbs(p) || filepath.Clean(p) != p {
				t.Errorf("%s = %q, want a clean absolute path", name, p)
			}
			if !under(p) {
				t.Errorf("%s = %q is outside its root", name, p)
			}
			if other, dup := seen[p]; dup {
				t.Errorf("%s and %s are both %q", name, other, p)
			}
			seen[p] = name
		}
	}
	in := func(root string) func(string) bool {
		return func(p string) bool { return strings.HasPrefix(p, root+"/") || p == root }
	}
	check("Server", NewServer(data), in(data+"/server"))
	check("Agent", NewAgent(data, run), func(p string) bool { return in(data)(p) || in(run)(p) })
	if a := NewAgent(data, run); a.Socket != run+"/containerd/containerd.sock" || a.Storage != data+"/storage" {
		t.Errorf("socket %q storage %q: the paths users and install.sh know moved", a.Socket, a.Storage)
	}
	if s := NewServer(data); s.TokenFile != data+"/server/token" || s.SQLiteFile != data+"/server/db/state.db" {
		t.Errorf("token %q db %q: the paths users and install.sh know moved", s.TokenFile, s.SQLiteFile)
	}
}

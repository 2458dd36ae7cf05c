package deploy

import (
	"os"
	"path/filepath"
	"testing"
)

func TestStage(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "manifests")
	packaged := map[string][]byte{"coredns.yaml": []byte("dns v2\n"), "metrics-server.yaml": []byte("metrics v2\n"), "local-storage.yaml": []byte("storage v2\n")}
	disabled := map[string]bool{}
	stage := func() {
		t.Helper()
		if err := Stage(dir, packaged, func(a string) bool { return disabled[a] }); err != nil {
			t.Fatal(err)
		}
	}
	read := func(name string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, name))
		if os.IsNotExist(err) {
			return "<none>"
		}
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	write := func(name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	stage()
	for name, data := range packaged {
		if got := read(name); got != string(data) {
			t.Fatalf("%s = %q, want %q", name, got, data)
		}
	}
	write("coredns.yaml", "edited\n")
	write("metrics-server.yaml", "edited\n")
	write("metrics-server.yaml.skip", "")
	write("mine.yaml", "user\n")
	stage()
	if got := read("coredns.yaml"); got != "dns v2\n" {
		t.Fatalf("an edit without .skip survived a start: %q", got)
	}
	if got := read("metrics-server.yaml"); got != "edited\n" {
		t.Fatalf("an edit with .skip was overwritten: %q", got)
	}
	if got := read("mine.yaml"); got != "user\n" {
		t.Fatalf("a user's file changed: %q", got)
	}

	disabled["coredns"], disabled["metrics-server"] = true, true
	stage()
	if got := read("coredns.yaml"); got != "<none>" {
		t.Fatalf("disabled coredns.yaml still staged: %q", got)
	}
	if got := read("metrics-server.yaml"); got != "edited\n" {
		t.Fatalf("disabling removed a user's edited file kept by .skip: %q", got)
	}
	if got := read("local-storage.yaml"); got != "storage v2\n" {
		t.Fatalf("local-storage.yaml = %q", got)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name()[0] == '.' {
			t.Fatalf("temporary file left: %s", e.Name())
		}
	}
}

package elfcheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// A static Go program passes for its own architecture and fails for
// another; a dynamically linked system program and a non-ELF file fail.
func TestStatic(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the fixtures are built for amd64")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte("package main\nfunc main() {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "static")
	cmd := exec.Command("go", "build", "-o", bin, src)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if err := Static(bin, "amd64"); err != nil {
		t.Errorf("static Go program: %v", err)
	}
	if err := Static(bin, "arm64"); err == nil || !strings.Contains(err.Error(), "not arm64") {
		t.Errorf("as arm64: %v", err)
	}
	if err := Static("/bin/sh", "amd64"); err == nil || !strings.Contains(err.Error(), "dynamically linked") {
		t.Errorf("/bin/sh: %v", err)
	}
	if err := Static(src, "amd64"); err == nil {
		t.Error("a Go source file passed as a program")
	}
	if err := Static(bin, "mips"); err == nil {
		t.Error("unknown architecture accepted")
	}
}

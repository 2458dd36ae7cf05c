package bundle

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func archive(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := zstd.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func TestInstallOnceAndReuse(t *testing.T) {
	dir := t.TempDir()
	a := archive(t, map[string]string{"runc": "RUNC", "cni/bridge": "BRIDGE"})
	bin, err := install(a, dir)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(bin, "cni/bridge")); string(b) != "BRIDGE" {
		t.Fatalf("cni/bridge = %q", b)
	}
	st, _ := os.Stat(filepath.Join(bin, "runc"))
	if st.Mode().Perm() != 0o755 {
		t.Fatalf("runc mode %v", st.Mode())
	}
	// A second install of the same archive reuses the directory untouched.
	os.WriteFile(filepath.Join(bin, "marker"), nil, 0o600)
	again, err := install(a, dir)
	if err != nil || again != bin {
		t.Fatalf("reinstall = %s, %v", again, err)
	}
	if _, err := os.Stat(filepath.Join(bin, "marker")); err != nil {
		t.Fatal("reinstall replaced the existing directory")
	}
	// Another archive goes to another hash directory; no temp dirs remain.
	other, err := install(archive(t, map[string]string{"runc": "NEW"}), dir)
	if err != nil || other == bin {
		t.Fatalf("new archive: %s, %v", other, err)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "data"))
	if len(entries) != 2 {
		t.Fatalf("data dir has %d entries, want 2", len(entries))
	}
}

func TestInstallRejectsEscapingPaths(t *testing.T) {
	dir := t.TempDir()
	if _, err := install(archive(t, map[string]string{"../evil": "x"}), dir); err == nil {
		t.Fatal("path escaping the bundle dir accepted")
	}
	if _, err := os.Stat(filepath.Join(dir, "evil")); err == nil {
		t.Fatal("file written outside the bundle dir")
	}
	if _, err := install([]byte("not zstd"), dir); err == nil {
		t.Fatal("garbage archive accepted")
	}
}

// TestEmbeddedBundle checks the bundle that scripts/build embeds.
func TestEmbeddedBundle(t *testing.T) {
	bin, err := Install(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"runc", "containerd-shim-runc-v2", "cni/bridge", "cni/host-local", "cni/loopback", "cni/portmap"} {
		st, err := os.Stat(filepath.Join(bin, name))
		if err != nil || st.Mode().Perm()&0o100 == 0 {
			t.Errorf("%s: %v (mode %v)", name, err, st)
		}
	}
}

func TestEmbeddedPauseImage(t *testing.T) {
	b, err := PauseImage()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 1024 {
		t.Fatalf("pause image is only %d bytes", len(b))
	}
}

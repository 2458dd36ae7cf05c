package containerd

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kedge/kedge/scripts/testenv"
)

func TestRenderGolden(t *testing.T) {
	got, err := Render(Config{
		Root: "/var/lib/kedge/agent/containerd", State: "/run/kedge/containerd",
		Socket: "/run/kedge/containerd/containerd.sock", BinDir: "/var/lib/kedge/data/0123/bin",
		CNIConfDir: "/var/lib/kedge/agent/etc/cni/net.d", RegistryConfigDir: "/var/lib/kedge/agent/etc/registries.d",
		RestrictOOMScoreAdj: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Golden(t, "config.toml", []byte(got))
}

func TestCanLower(t *testing.T) {
	p := filepath.Join(t.TempDir(), "oom_score_adj")
	os.WriteFile(p, []byte("0\n"), 0o644)
	if !canLower(p) {
		t.Fatal("writable file reported as not lowerable")
	}
	if b, _ := os.ReadFile(p); string(b) != "0" {
		t.Fatalf("value not restored: %q", b)
	}
	os.WriteFile(p, []byte("-1000"), 0o644)
	if !canLower(p) {
		t.Fatal("-1000 is already the floor; nothing needs lowering")
	}
	if canLower(filepath.Join(t.TempDir(), "missing")) {
		t.Fatal("missing file reported as lowerable")
	}
}

package ociimage

import (
	"archive/tar"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestWriteTarballRoundTrip(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "pause")
	if err := os.WriteFile(bin, []byte("#!fake binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "images", "pause.tar")
	if err := WriteTarball(bin, "registry.k8s.io/pause:3.10.2", "arm64", out); err != nil {
		t.Fatal(err)
	}
	tag, _ := name.NewTag("registry.k8s.io/pause:3.10.2")
	img, err := tarball.ImageFromPath(out, &tag)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OS != "linux" || cfg.Architecture != "arm64" || len(cfg.Config.Entrypoint) != 1 || cfg.Config.Entrypoint[0] != "/pause" {
		t.Fatalf("config = %+v", cfg)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d, %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	hdr, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(tr)
	if hdr.Name != "pause" || hdr.Mode != 0o755 || string(body) != "#!fake binary" {
		t.Fatalf("layer entry %q mode %o body %q", hdr.Name, hdr.Mode, body)
	}

	// Same binary, same digest: builds are reproducible.
	out2 := filepath.Join(dir, "again.tar")
	if err := WriteTarball(bin, "registry.k8s.io/pause:3.10.2", "arm64", out2); err != nil {
		t.Fatal(err)
	}
	img2, _ := tarball.ImageFromPath(out2, &tag)
	d1, _ := img.Digest()
	d2, _ := img2.Digest()
	if d1 != d2 {
		t.Fatalf("digests differ: %s vs %s", d1, d2)
	}
}

func TestWriteTarballErrors(t *testing.T) {
	dir := t.TempDir()
	if err := WriteTarball(filepath.Join(dir, "missing"), "x:1", "", filepath.Join(dir, "o.tar")); err == nil {
		t.Fatal("missing binary accepted")
	}
	bin := filepath.Join(dir, "b")
	os.WriteFile(bin, []byte("x"), 0o755)
	if err := WriteTarball(bin, "Not A Ref!", "", filepath.Join(dir, "o.tar")); err == nil {
		t.Fatal("bad reference accepted")
	}
}

// 32-bit ARM images carry variant v7, which containerd matches on armv7
// devices; other architectures carry none.
func TestImagePlatform(t *testing.T) {
	for _, tc := range []struct{ in, arch, variant string }{
		{"armv7", "arm", "v7"},
		{"arm64", "arm64", ""},
		{"amd64", "amd64", ""},
	} {
		img, err := Image([]byte("x"), "pause", tc.in)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Architecture != tc.arch || cfg.Variant != tc.variant {
			t.Errorf("%s: architecture %q variant %q, want %q %q", tc.in, cfg.Architecture, cfg.Variant, tc.arch, tc.variant)
		}
	}
}

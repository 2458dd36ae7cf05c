package ociimage

import (
	"archive/tar"
	"fmt"
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

// An image of several files keeps each entry's type and mode (a setuid
// binary, a sticky directory, a symlink), its run config, and answers to
// every reference it was written with.
func TestFilesImageWithSeveralRefs(t *testing.T) {
	files := []File{
		{Path: "bin", Dir: true},
		{Path: "bin/tool", Data: []byte("tool"), Mode: 0o4755},
		{Path: "bin/sh", Link: "tool"},
		{Path: "tmp", Dir: true, Mode: 0o1777},
	}
	img, err := Files(files, Config{Cmd: []string{"sh"}, Env: []string{"PATH=/bin"}, User: "1234", Ports: []string{"80/tcp"}}, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "img.tar")
	refs := []string{"registry.k8s.io/e2e-test-images/busybox:1.37.0-2", "registry.k8s.io/e2e-test-images/nonroot:1.5"}
	if err := WriteImage(img, out, refs...); err != nil {
		t.Fatal(err)
	}
	for _, ref := range refs {
		tag, _ := name.NewTag(ref)
		got, err := tarball.ImageFromPath(out, &tag)
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		cfg, err := got.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Config.User != "1234" || len(cfg.Config.Cmd) != 1 || cfg.Config.Cmd[0] != "sh" || cfg.Config.Env[0] != "PATH=/bin" {
			t.Fatalf("%s: config %+v", ref, cfg.Config)
		}
		if _, ok := cfg.Config.ExposedPorts["80/tcp"]; !ok {
			t.Fatalf("%s: exposed ports %v", ref, cfg.Config.ExposedPorts)
		}
	}
	layers, _ := img.Layers()
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	want := map[string]string{"bin/": "dir 755", "bin/tool": "file 4755", "bin/sh": "link tool", "tmp/": "dir 1777"}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var got string
		switch hdr.Typeflag {
		case tar.TypeDir:
			got = fmt.Sprintf("dir %o", hdr.Mode)
		case tar.TypeSymlink:
			got = "link " + hdr.Linkname
		default:
			got = fmt.Sprintf("file %o", hdr.Mode)
		}
		if want[hdr.Name] != got {
			t.Errorf("%s: %s, want %q", hdr.Name, got, want[hdr.Name])
		}
		delete(want, hdr.Name)
	}
	if len(want) != 0 {
		t.Fatalf("missing entries: %v", want)
	}
	if err := WriteImage(img, out); err == nil {
		t.Fatal("an image without a reference was written")
	}
}

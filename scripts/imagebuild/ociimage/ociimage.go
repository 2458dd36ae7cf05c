// Package ociimage builds single-binary container images without a
// registry or a container engine.
package ociimage

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Image returns an image whose only layer holds binary at /<base name>,
// mode 0755, run as the entrypoint. Timestamps are fixed so that the same
// binary always gives the same image digest. arch is a Go architecture or
// "armv7" (arm, variant v7); empty means this machine's.
func Image(binary []byte, name, arch string) (v1.Image, error) {
	if arch == "" {
		arch = runtime.GOARCH
	}
	variant := ""
	if arch == "armv7" {
		arch, variant = "arm", "v7"
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(binary)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(binary); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layerBytes := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerBytes)), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture, cfg.Variant = "linux", arch, variant
	cfg.Created = v1.Time{Time: time.Unix(0, 0)}
	cfg.Config.Entrypoint = []string{"/" + name}
	return mutate.ConfigFile(img, cfg)
}

// WriteTarball packages the binary at path as ref and writes the tarball to out.
func WriteTarball(path, ref, arch, out string) error {
	binary, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("image reference %q: %w", ref, err)
	}
	img, err := Image(binary, filepath.Base(path), arch)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return tarball.WriteToFile(out, tag, img)
}

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

// File is one entry of a layer built by Files: a regular file with Data and
// Mode, a directory (Dir), or a symbolic link to Link.
type File struct {
	Path string // inside the image, without the leading "/"
	Data []byte
	Mode int64
	Dir  bool
	Link string
}

// Config is what an image built by Files runs.
type Config struct {
	Entrypoint []string
	Cmd        []string
	Env        []string
	WorkingDir string
	User       string
	// Ports documents exposed ports ("80/tcp"), as EXPOSE does.
	Ports []string
}

// Files returns an image whose only layer holds files (in order: parents
// before their entries), for arch as in Image, running cfg. Timestamps are
// fixed, so the same files always give the same digest.
func Files(files []File, cfg Config, arch string) (v1.Image, error) {
	if arch == "" {
		arch = runtime.GOARCH
	}
	variant := ""
	if arch == "armv7" {
		arch, variant = "arm", "v7"
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.Path, Mode: f.Mode, ModTime: time.Unix(0, 0)}
		switch {
		case f.Dir:
			h.Typeflag, h.Name = tar.TypeDir, f.Path+"/"
			if h.Mode == 0 {
				h.Mode = 0o755
			}
		case f.Link != "":
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, f.Link, 0o777
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.Data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(f.Data); err != nil {
				return nil, err
			}
		}
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
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = "linux", arch, variant
	cf.Created = v1.Time{Time: time.Unix(0, 0)}
	cf.Config.Entrypoint, cf.Config.Cmd, cf.Config.Env, cf.Config.WorkingDir, cf.Config.User = cfg.Entrypoint, cfg.Cmd, cfg.Env, cfg.WorkingDir, cfg.User
	if len(cfg.Ports) > 0 {
		cf.Config.ExposedPorts = map[string]struct{}{}
		for _, p := range cfg.Ports {
			cf.Config.ExposedPorts[p] = struct{}{}
		}
	}
	return mutate.ConfigFile(img, cf)
}

// WriteImage writes img tagged as each of refs (at least one) to the
// tarball out.
func WriteImage(img v1.Image, out string, refs ...string) error {
	m := map[name.Reference]v1.Image{}
	for _, ref := range refs {
		tag, err := name.NewTag(ref)
		if err != nil {
			return fmt.Errorf("image reference %q: %w", ref, err)
		}
		m[tag] = img
	}
	if len(m) == 0 {
		return fmt.Errorf("write %s: no image reference", out)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return tarball.MultiRefWriteToFile(out, m)
}

// Package bundle carries the programs the agent runs outside its own
// process (runc, containerd-shim-runc-v2, CNI plugins) inside the kedge
// binary, and unpacks them once per content hash.
package bundle

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// assets and assetDir (one file per architecture, assets_<goarch>.go) hold
// the files scripts/build writes to assets/<goarch>/ for the target: each
// binary carries only its own architecture's programs, and a cross build
// never replaces what a native build embeds.
var (
	archiveName = path.Join(assetDir, "bundle.tar.zst")
	pauseName   = path.Join(assetDir, "pause.tar")
)

// ErrMissing means this kedge binary was built without the runtime bundle.
var ErrMissing = errors.New("this kedge binary carries no runtime bundle (build it with scripts/build)")

// Install unpacks the embedded bundle to <dataDir>/data/<hash>/bin, unless a
// complete copy is already there, and returns that directory. Unpacking goes
// to a temporary directory renamed into place, so an interrupted install is
// never mistaken for a complete one.
func Install(dataDir string) (string, error) {
	archive, err := assets.ReadFile(archiveName)
	if errors.Is(err, fs.ErrNotExist) {
		return "", ErrMissing
	}
	if err != nil {
		return "", err
	}
	return install(archive, dataDir)
}

func install(archive []byte, dataDir string) (string, error) {
	sum := sha256.Sum256(archive)
	root := filepath.Join(dataDir, "data", hex.EncodeToString(sum[:8]))
	bin := filepath.Join(root, "bin")
	if st, err := os.Stat(bin); err == nil && st.IsDir() {
		return bin, nil
	}
	if err := os.MkdirAll(filepath.Dir(root), 0o755); err != nil {
		return "", fmt.Errorf("install runtime bundle: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(root), ".install-*")
	if err != nil {
		return "", fmt.Errorf("install runtime bundle: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := extract(archive, filepath.Join(tmp, "bin")); err != nil {
		return "", fmt.Errorf("install runtime bundle: %w", err)
	}
	if err := os.Rename(tmp, root); err != nil {
		if _, statErr := os.Stat(bin); statErr == nil {
			return bin, nil // another process installed it first
		}
		return "", fmt.Errorf("install runtime bundle: %w", err)
	}
	return bin, nil
}

func extract(archive []byte, dest string) error {
	zr, err := zstd.NewReader(bytes.NewReader(archive))
	if err != nil {
		return err
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return err
	}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(hdr.Name)
		if filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return fmt.Errorf("bad path %q in bundle", hdr.Name)
		}
		target := filepath.Join(dest, name)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(hdr.Mode)&0o755)
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, tr); err != nil {
				f.Close()
				return err
			}
			if err := f.Sync(); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unsupported entry %q in bundle", hdr.Name)
		}
	}
}

// PauseImage returns the pod sandbox image tarball (kedge.local/pause:1)
// that scripts/build embeds next to the bundle.
func PauseImage() ([]byte, error) {
	b, err := assets.ReadFile(pauseName)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrMissing
	}
	return b, err
}

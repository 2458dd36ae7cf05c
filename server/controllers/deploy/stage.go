package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/kedge/kedge/shared/atomicfile"
)

// SkipSuffix marks a manifest the server must not rewrite: with NAME.yaml.skip
// next to it, a packaged NAME.yaml keeps the user's edit across restarts.
const SkipSuffix = ".skip"

// AddonName is the add-on a packaged file belongs to: its name without .yaml.
func AddonName(file string) string { return strings.TrimSuffix(file, ".yaml") }

// Stage writes the packaged manifests (file name -> content) into dir, which
// it creates. A packaged file is rewritten when its content differs, unless
// NAME.yaml.skip exists. The file of a disabled add-on is removed, unless
// NAME.yaml.skip exists (then the user's file stays on disk; the deployer
// ignores it while the add-on is disabled). Files a user added are left alone.
func Stage(dir string, packaged map[string][]byte, disabled func(addon string) bool) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("stage manifests: %w", err)
	}
	for name, data := range packaged {
		path := filepath.Join(dir, name)
		skip, err := exists(path + SkipSuffix)
		if err != nil {
			return fmt.Errorf("stage manifests: %w", err)
		}
		if skip {
			continue
		}
		if disabled(AddonName(name)) {
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("stage manifests: remove disabled %s: %w", name, err)
			}
			continue
		}
		if cur, err := os.ReadFile(path); err == nil && bytes.Equal(cur, data) {
			continue
		}
		if err := atomicfile.Write(path, data, 0o600); err != nil {
			return fmt.Errorf("stage manifests: %w", err)
		}
	}
	return nil
}

func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

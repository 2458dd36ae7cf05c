// Package manifests carries the add-on YAML of this directory in the binary.
// server/controllers/deploy stages it into <data-dir>/server/manifests at server start.
//
// Every *.yaml file here is packaged; the name before .yaml is the add-on's
// name, which --disable takes (see server/config.Addons). Files may use the
// template variables documented in server/controllers/deploy (Variables).
package manifests

import (
	"embed"
	"io/fs"
)

//go:embed *.yaml
var dir embed.FS

// Files returns the packaged manifests by file name (for example
// "coredns.yaml"). The caller must not change the returned slices.
func Files() (map[string][]byte, error) {
	entries, err := fs.ReadDir(dir, ".")
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	for _, e := range entries {
		data, err := dir.ReadFile(e.Name())
		if err != nil {
			return nil, err
		}
		files[e.Name()] = data
	}
	return files, nil
}

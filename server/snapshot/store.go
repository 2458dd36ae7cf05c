package snapshot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// File is a snapshot file in a snapshot directory.
type File struct {
	Name    string    `json:"name"`
	Path    string    `json:"path"`
	Size    int64     `json:"size"`
	ModTime time.Time `json:"modTime"`
}

// List returns the snapshot files in dir, oldest first (none if dir does
// not exist).
func List(dir string) ([]File, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []File
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), Suffix) || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return nil, err
		}
		out = append(out, File{Name: strings.TrimSuffix(e.Name(), Suffix), Path: filepath.Join(dir, e.Name()),
			Size: info.Size(), ModTime: info.ModTime()})
	}
	slices.SortStableFunc(out, func(a, b File) int { return a.ModTime.Compare(b.ModTime) })
	return out, nil
}

// Delete removes the snapshots of dir named names (with or without
// Suffix). A name that is not a snapshot in dir is an error, and nothing
// is removed then.
func Delete(dir string, names ...string) error {
	files, err := List(dir)
	if err != nil {
		return err
	}
	var paths []string
	for _, n := range names {
		n = strings.TrimSuffix(n, Suffix)
		i := slices.IndexFunc(files, func(f File) bool { return f.Name == n })
		if i < 0 {
			return fmt.Errorf("no snapshot %q in %s", n, dir)
		}
		paths = append(paths, files[i].Path)
	}
	for _, p := range paths {
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	return nil
}

// Prune removes the oldest snapshots of dir whose names start with
// prefix+"-", keeping the newest retention of them, and returns the names
// it removed.
func Prune(dir, prefix string, retention int) ([]string, error) {
	if retention < 1 {
		return nil, fmt.Errorf("--retention %d: keep at least 1", retention)
	}
	files, err := List(dir)
	if err != nil {
		return nil, err
	}
	var mine []File
	for _, f := range files {
		if strings.HasPrefix(f.Name, prefix+"-") {
			mine = append(mine, f)
		}
	}
	var removed []string
	for len(mine) > retention {
		if err := os.Remove(mine[0].Path); err != nil {
			return removed, err
		}
		removed = append(removed, mine[0].Name)
		mine = mine[1:]
	}
	return removed, nil
}

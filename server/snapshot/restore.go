package snapshot

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kedge/kedge/shared/atomicfile"
	"github.com/kedge/kedge/shared/datadir"
)

// Restore unpacks the snapshot at file into dataDir: the database, the TLS
// directory and the tokens it holds. A database already there (with its
// WAL files) is kept beside it as state.db.before-restore-<unix time>;
// nothing is deleted. The archive must start with its manifest and hold
// only the files the manifest lists, all below server/.
func Restore(file, dataDir string, now time.Time) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("--restore-path: %w", err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("--restore-path %s is not a kedge snapshot: %w", file, err)
	}
	tr := tar.NewReader(gz)
	h, err := tr.Next()
	if err != nil || h.Name != ManifestName {
		return fmt.Errorf("--restore-path %s is not a kedge snapshot (no %s first)", file, ManifestName)
	}
	var m Manifest
	if err := json.NewDecoder(io.LimitReader(tr, 1<<20)).Decode(&m); err != nil {
		return fmt.Errorf("--restore-path %s: manifest: %w", file, err)
	}
	if m.Datastore != "sqlite" {
		return fmt.Errorf("--restore-path %s: datastore %q; only sqlite snapshots can be restored", file, m.Datastore)
	}
	paths := datadir.NewServer(dataDir)
	db := rel(dataDir, paths.SQLiteFile)
	if !slices.Contains(m.Files, db) {
		return fmt.Errorf("--restore-path %s: no %s in the snapshot", file, db)
	}
	if err := setAside(paths.SQLiteFile, now); err != nil {
		return err
	}
	seen := map[string]bool{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("--restore-path %s: %w", file, err)
		}
		name := h.Name
		if !slices.Contains(m.Files, name) || !safeMember(name) || h.Typeflag != tar.TypeReg {
			return fmt.Errorf("--restore-path %s: unexpected member %q", file, name)
		}
		dst := filepath.Join(dataDir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return err
		}
		if err := atomicfile.WriteFrom(dst, 0o600, func(w io.Writer) error { _, err := io.Copy(w, tr); return err }); err != nil {
			return fmt.Errorf("restore %s: %w", name, err)
		}
		seen[name] = true
	}
	for _, name := range m.Files {
		if !seen[name] {
			return fmt.Errorf("--restore-path %s: %s is listed but missing", file, name)
		}
	}
	return nil
}

// setAside renames an existing database and its WAL and shared-memory
// files to <name>.before-restore-<unix time> (a stale WAL must never meet
// the restored database).
func setAside(db string, now time.Time) error {
	suffix := fmt.Sprintf(".before-restore-%d", now.Unix())
	for _, p := range []string{db, db + "-wal", db + "-shm"} {
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err := os.Rename(p, p+suffix); err != nil {
			return fmt.Errorf("keep the current database: %w", err)
		}
	}
	return nil
}

// safeMember accepts clean relative paths below server/.
func safeMember(name string) bool {
	return path.Clean(name) == name && strings.HasPrefix(name, "server/") && !strings.Contains(name, "..")
}

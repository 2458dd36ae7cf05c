// Package snapshot saves, lists and prunes backups of a kedge server's
// SQLite datastore: one tar.gz file (mode 0600) holding a consistent copy
// of state.db, taken with SQLite's VACUUM INTO while the server runs (not
// a file copy of a live WAL database), and what a restore needs besides
// the data: the server's TLS directory (CAs and their keys, the
// service-account key), its tokens and its Secrets encryption config (the
// keys). The file holds secrets; keep it like the data dir.
package snapshot

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	_ "github.com/mattn/go-sqlite3" // the driver kine uses for state.db

	"github.com/kedge/kedge/shared/atomicfile"
	"github.com/kedge/kedge/shared/datadir"
)

// Suffix ends every snapshot file's name.
const Suffix = ".tar.gz"

// ManifestName is the archive member that describes the snapshot.
const ManifestName = "snapshot.json"

// Manifest describes a snapshot; it is the archive's first member.
type Manifest struct {
	Name      string    `json:"name"`
	Node      string    `json:"node"`
	Created   time.Time `json:"created"`
	Datastore string    `json:"datastore"`
	// Files are the archive's other members, paths relative to the data dir.
	Files []string `json:"files"`
}

// Request is what Save needs.
type Request struct {
	// DataDir is the server's data dir.
	DataDir string
	// Dir receives the snapshot file (created 0700 if missing).
	Dir string
	// Name prefixes the file name: <Name>-<Node>-<unix seconds>.tar.gz.
	Name string
	Node string
	Now  time.Time
}

// Save writes a snapshot and returns its path. It refuses a data dir
// without a SQLite datastore (embedded etcd snapshots are not done yet).
func Save(ctx context.Context, r Request) (string, error) {
	if err := validName(r.Name); err != nil {
		return "", err
	}
	paths := datadir.NewServer(r.DataDir)
	if _, err := os.Stat(paths.SQLiteFile); err != nil {
		if _, etcdErr := os.Stat(paths.EtcdDir); etcdErr == nil {
			return "", errors.New("this server uses embedded etcd; kedge snapshot saves SQLite datastores only (yet)")
		}
		return "", fmt.Errorf("no SQLite datastore in --data-dir %s: %w", r.DataDir, err)
	}
	if err := os.MkdirAll(r.Dir, 0o700); err != nil {
		return "", err
	}
	work, err := os.MkdirTemp(r.Dir, ".snapshot-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	copyDB := filepath.Join(work, "state.db")
	if err := vacuumInto(ctx, paths.SQLiteFile, copyDB); err != nil {
		return "", err
	}
	name := fmt.Sprintf("%s-%s-%d%s", r.Name, r.Node, r.Now.Unix(), Suffix)
	m := Manifest{Name: strings.TrimSuffix(name, Suffix), Node: r.Node, Created: r.Now.UTC(), Datastore: "sqlite"}
	members := map[string]string{rel(r.DataDir, paths.SQLiteFile): copyDB}
	// The Secrets encryption keys: without them a restored cluster cannot
	// read its Secrets.
	for _, f := range []string{paths.TokenFile, paths.AgentTokenFile, paths.EncryptionConfig} {
		if _, err := os.Stat(f); err == nil {
			members[rel(r.DataDir, f)] = f
		}
	}
	if err := filepath.WalkDir(paths.TLSDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		members[rel(r.DataDir, p)] = p
		return nil
	}); err != nil {
		return "", fmt.Errorf("TLS dir: %w", err)
	}
	for k := range members {
		m.Files = append(m.Files, k)
	}
	slices.Sort(m.Files)
	out := filepath.Join(r.Dir, name)
	if err := atomicfile.WriteFrom(out, 0o600, func(w io.Writer) error { return writeArchive(w, m, members) }); err != nil {
		return "", fmt.Errorf("write %s: %w", out, err)
	}
	return out, nil
}

// vacuumInto copies the live database src into dst in one read
// transaction, so the copy is consistent whatever kine writes meanwhile.
func vacuumInto(ctx context.Context, src, dst string) error {
	db, err := sql.Open("sqlite3", "file:"+src+"?_busy_timeout=30000")
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", dst); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return nil
}

func writeArchive(w io.Writer, m Manifest, members map[string]string) error {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: ManifestName, Mode: 0o600, Size: int64(len(manifest)), ModTime: m.Created}); err != nil {
		return err
	}
	if _, err := tw.Write(manifest); err != nil {
		return err
	}
	for _, name := range m.Files {
		if err := addFile(tw, name, members[name], m.Created); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

func addFile(tw *tar.Writer, name, src string, mtime time.Time) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: st.Size(), ModTime: mtime}); err != nil {
		return err
	}
	_, err = io.Copy(tw, in)
	return err
}

func rel(base, p string) string {
	r, err := filepath.Rel(base, p)
	if err != nil {
		return p
	}
	return r
}

// validName accepts names that make a single, readable file name.
func validName(name string) error {
	if name == "" || strings.ContainsAny(name, "/\\ \t\n") || strings.HasPrefix(name, ".") {
		return fmt.Errorf("--name %q must be a non-empty file name without slashes or spaces", name)
	}
	return nil
}

// Package snapshot saves, lists, prunes and restores backups of a kedge
// server's own datastore: one tar.gz file (mode 0600) holding a
// consistent copy of the data, taken while the server runs, and what a
// restore needs besides the data: the server's TLS directory (CAs and
// their keys, the service-account key), its tokens and its Secrets
// encryption config (the keys). For SQLite the copy
// is SQLite's VACUUM INTO (not a file copy of a live WAL database); for
// embedded etcd it is an etcd snapshot through the Maintenance API. The
// manifest, the archive's first member, names every other member with its
// sha256. The file holds secrets; keep it like the data dir.
package snapshot

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	_ "github.com/mattn/go-sqlite3" // the driver kine uses for state.db

	"github.com/kedge/kedge/embedded/etcd"
	"github.com/kedge/kedge/embedded/etcdcheck"
	"github.com/kedge/kedge/shared/atomicfile"
	"github.com/kedge/kedge/shared/datadir"
)

// Suffix ends every snapshot file's name.
const Suffix = ".tar.gz"

// ManifestName is the archive member that describes the snapshot.
const ManifestName = "snapshot.json"

// Format is the version of the archive layout this kedge writes; a
// restore refuses a snapshot of a newer one.
const Format = 1

// Datastores a snapshot holds (Manifest.Datastore).
const (
	DatastoreSQLite = "sqlite"
	DatastoreEtcd   = "etcd"
)

// nodePasswordMember is the server's own node's password in the archive.
const nodePasswordMember = "agent/node-password"

// EtcdMember is the archive member of an etcd snapshot: etcd's snapshot
// file (with its own sha256 trailer), restored into the etcd data dir.
const EtcdMember = "server/db/etcd-snapshot.db"

// Manifest describes a snapshot; it is the archive's first member.
type Manifest struct {
	Format    int       `json:"format"`
	Name      string    `json:"name"`
	Node      string    `json:"node"`
	Created   time.Time `json:"created"`
	Datastore string    `json:"datastore"`
	// Files are the archive's other members, paths relative to the data dir.
	Files []string `json:"files"`
	// SHA256 is the hex sha256 of each of Files.
	SHA256 map[string]string `json:"sha256"`
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
	// EtcdEndpoint is the embedded etcd member's client URL (default
	// https://127.0.0.1:2379); its client certificate is the one in the
	// data dir's TLS dir.
	EtcdEndpoint string
}

// Save writes a snapshot of the data dir's running embedded etcd member
// or, without one, of its SQLite database (the server's choice too), and
// returns its path.
func Save(ctx context.Context, r Request) (string, error) {
	if err := validName(r.Name); err != nil {
		return "", err
	}
	paths := datadir.NewServer(r.DataDir)
	if err := os.MkdirAll(r.Dir, 0o700); err != nil {
		return "", err
	}
	work, err := os.MkdirTemp(r.Dir, ".snapshot-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	name := fmt.Sprintf("%s-%s-%d%s", r.Name, r.Node, r.Now.Unix(), Suffix)
	m := Manifest{Format: Format, Name: strings.TrimSuffix(name, Suffix), Node: r.Node, Created: r.Now.UTC()}
	members := map[string]string{}
	switch {
	case exists(paths.EtcdDir):
		db := filepath.Join(work, "etcd.db")
		if err := saveEtcd(ctx, r, paths, db); err != nil {
			return "", err
		}
		m.Datastore, members[EtcdMember] = DatastoreEtcd, db
	case exists(paths.SQLiteFile):
		copyDB := filepath.Join(work, "state.db")
		if err := vacuumInto(ctx, paths.SQLiteFile, copyDB); err != nil {
			return "", err
		}
		m.Datastore, members[rel(r.DataDir, paths.SQLiteFile)] = DatastoreSQLite, copyDB
	default:
		return "", fmt.Errorf("no SQLite database (%s) or embedded etcd (%s) in --data-dir %s", paths.SQLiteFile, paths.EtcdDir, r.DataDir)
	}
	// The Secrets encryption keys: without them a restored cluster cannot
	// read its Secrets.
	// The password of the server's own node: the restored server knows the
	// node by it (a new one would be refused).
	nodePassword := datadir.NewAgent(r.DataDir, datadir.DefaultRunDir).NodePassword
	for _, f := range []string{paths.TokenFile, paths.AgentTokenFile, paths.EncryptionConfig, nodePassword} {
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
	m.SHA256 = map[string]string{}
	for k, src := range members {
		m.Files = append(m.Files, k)
		if filepath.Dir(src) != work {
			// The archive holds exactly what was hashed, even if a
			// certificate is renewed meanwhile.
			cp := filepath.Join(work, fmt.Sprintf("member-%d", len(m.Files)))
			if err := copyFile(src, cp); err != nil {
				return "", err
			}
			members[k], src = cp, cp
		}
		sum, err := fileSHA256(src)
		if err != nil {
			return "", err
		}
		m.SHA256[k] = sum
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

// saveEtcd takes an etcd snapshot of the member at r.EtcdEndpoint into dst,
// with the client certificate of the data dir.
func saveEtcd(ctx context.Context, r Request, paths datadir.Server, dst string) error {
	endpoint := r.EtcdEndpoint
	if endpoint == "" {
		endpoint = EtcdEndpoint(2379)
	}
	tls := filepath.Join(paths.TLSDir, "etcd")
	return etcd.SaveSnapshot(ctx, etcdcheck.Target{Endpoints: []string{endpoint},
		CAFile: filepath.Join(tls, "server-ca.crt"), CertFile: filepath.Join(tls, "client.crt"), KeyFile: filepath.Join(tls, "client.key")}, dst)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
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

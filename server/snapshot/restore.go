package snapshot

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
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

	"github.com/kedge/kedge/embedded/etcd"
	"github.com/kedge/kedge/shared/datadir"
	"github.com/kedge/kedge/shared/token"
)

// RestoreRequest is what Restore needs.
type RestoreRequest struct {
	// File is the snapshot (kedge snapshot save's).
	File    string
	DataDir string
	Now     time.Time
	// Token is the server token given with the restore (--token), zero if
	// none; a snapshot whose token differs is refused.
	Token token.Token
	// EtcdMember and EtcdPeerURL are the name and peer URL of the one
	// member an etcd snapshot is restored as (this server's).
	EtcdMember, EtcdPeerURL string
}

// Restore puts the snapshot r.File into r.DataDir: its database (SQLite's
// state.db, or a new one-member embedded etcd made from the etcd
// snapshot), its TLS directory, its tokens and its Secrets encryption
// config, and the password of the server's own node (so that its node can
// join the restored server on a new host). Every check comes first:
// the archive is unpacked into a staging directory inside the data dir,
// each member's sha256 compared with the manifest, the token compared and
// an etcd snapshot restored there; on any error the staging directory is
// removed and the data dir is as it was. Only then is what the data dir
// held (state.db with its WAL files, the etcd dir, the TLS dir, the
// tokens, the encryption config) renamed to <name>.before-restore-<unix time>, nothing deleted,
// and the restored files renamed into place.
func Restore(r RestoreRequest) (err error) {
	paths := datadir.NewServer(r.DataDir)
	created := firstMissing(paths.ServerDir)
	if err := os.MkdirAll(paths.ServerDir, 0o700); err != nil {
		return err
	}
	stage, err := os.MkdirTemp(paths.ServerDir, ".restore-*")
	if err != nil {
		return err
	}
	defer func() {
		os.RemoveAll(stage)
		if err != nil && created != "" {
			os.RemoveAll(created)
		}
	}()
	m, err := unpack(r.File, stage)
	if err != nil {
		return err
	}
	staged := func(p string) string { return filepath.Join(stage, rel(r.DataDir, p)) }
	if err := checkToken(r.Token, staged(paths.TokenFile)); err != nil {
		return fmt.Errorf("--restore-path %s: %w", r.File, err)
	}
	// moves are the staged files and directories, each to its place.
	moves := map[string]string{}
	switch m.Datastore {
	case DatastoreSQLite:
		moves[staged(paths.SQLiteFile)] = paths.SQLiteFile
	case DatastoreEtcd:
		dir := filepath.Join(stage, "etcd")
		if err := etcd.RestoreSnapshot(filepath.Join(stage, filepath.FromSlash(EtcdMember)), dir, r.EtcdMember, r.EtcdPeerURL); err != nil {
			return fmt.Errorf("--restore-path %s: %w", r.File, err)
		}
		moves[dir] = paths.EtcdDir
	}
	nodePassword := datadir.NewAgent(r.DataDir, datadir.DefaultRunDir).NodePassword
	for _, p := range []string{paths.TLSDir, paths.TokenFile, paths.AgentTokenFile, paths.EncryptionConfig, nodePassword} {
		if exists(staged(p)) {
			moves[staged(p)] = p
		}
	}

	// Nothing in the data dir has changed so far.
	suffix := fmt.Sprintf(".before-restore-%d", r.Now.Unix())
	aside := []string{paths.SQLiteFile, paths.SQLiteFile + "-wal", paths.SQLiteFile + "-shm", paths.EtcdDir}
	for _, dst := range moves {
		aside = append(aside, dst)
	}
	for _, p := range aside {
		if !exists(p) {
			continue
		}
		if err := os.Rename(p, p+suffix); err != nil {
			return fmt.Errorf("keep %s aside: %w", p, err)
		}
	}
	for src, dst := range moves {
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return err
		}
		if err := os.Rename(src, dst); err != nil {
			return fmt.Errorf("restore %s: %w", dst, err)
		}
	}
	return nil
}

// unpack checks the archive at file and writes its members below stage.
func unpack(file, stage string) (Manifest, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("--restore-path %s: %s", file, fmt.Sprintf(format, args...))
	}
	f, err := os.Open(file)
	if err != nil {
		return Manifest{}, fmt.Errorf("--restore-path: %w", err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return Manifest{}, bad("not a kedge snapshot: %v", err)
	}
	tr := tar.NewReader(gz)
	h, err := tr.Next()
	if err != nil || h.Name != ManifestName {
		return Manifest{}, bad("not a kedge snapshot (no %s first)", ManifestName)
	}
	var m Manifest
	if err := json.NewDecoder(io.LimitReader(tr, 1<<20)).Decode(&m); err != nil {
		return Manifest{}, bad("manifest: %v", err)
	}
	switch {
	case m.Format > Format:
		return Manifest{}, bad("written by a newer kedge (snapshot format %d; this kedge reads format %d or older): restore it with that kedge version", m.Format, Format)
	case m.Format < 1:
		return Manifest{}, bad("not a kedge snapshot (no format version in its manifest)")
	}
	var data string
	switch m.Datastore {
	case DatastoreSQLite:
		data = "server/db/state.db"
	case DatastoreEtcd:
		data = EtcdMember
	default:
		return Manifest{}, bad("datastore %q is not %s or %s", m.Datastore, DatastoreSQLite, DatastoreEtcd)
	}
	if !slices.Contains(m.Files, data) {
		return Manifest{}, bad("no %s in the snapshot", data)
	}
	for _, name := range m.Files {
		if !safeMember(name) || len(m.SHA256[name]) != sha256.Size*2 {
			return Manifest{}, bad("member %q is not below server/ or has no sha256 in the manifest", name)
		}
	}
	seen := map[string]bool{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Manifest{}, bad("damaged or truncated: %v", err)
		}
		name := h.Name
		if !slices.Contains(m.Files, name) || seen[name] || h.Typeflag != tar.TypeReg {
			return Manifest{}, bad("unexpected member %q", name)
		}
		seen[name] = true
		dst := filepath.Join(stage, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return Manifest{}, err
		}
		sum, err := writeMember(dst, tr)
		if err != nil {
			return Manifest{}, bad("damaged or truncated at %s: %v", name, err)
		}
		if sum != m.SHA256[name] {
			return Manifest{}, bad("damaged: %s does not match its sha256 in the manifest", name)
		}
	}
	for _, name := range m.Files {
		if !seen[name] {
			return Manifest{}, bad("damaged or truncated: %s is listed but missing", name)
		}
	}
	return m, nil
}

// writeMember copies r into a new file dst (0600) and returns its sha256.
func writeMember(dst string, r io.Reader) (string, error) {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(out, h), r); err != nil {
		out.Close()
		return "", err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return "", err
	}
	if err := out.Close(); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// checkToken refuses a snapshot whose server token (at file, if it has
// one) is not the given one.
func checkToken(given token.Token, file string) error {
	if given.Secret == "" {
		return nil
	}
	stored, err := token.Read(file)
	if err != nil {
		return fmt.Errorf("the snapshot's token: %w", err)
	}
	if given.Secret != stored.Secret || (given.CAHash != "" && stored.CAHash != "" && given.CAHash != stored.CAHash) {
		return errors.New("--token is not this snapshot's server token (a snapshot of another cluster?); nothing was changed")
	}
	return nil
}

// firstMissing returns the outermost directory of dir's path that does
// not exist yet ("" if dir exists): what Restore removes again on error.
func firstMissing(dir string) string {
	missing := ""
	for p := dir; !exists(p); p = filepath.Dir(p) {
		missing = p
		if filepath.Dir(p) == p {
			break
		}
	}
	return missing
}

// safeMember accepts clean relative paths below server/.
func safeMember(name string) bool {
	return path.Clean(name) == name && !strings.Contains(name, "..") &&
		(strings.HasPrefix(name, "server/") || name == nodePasswordMember)
}

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
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kedge/kedge/server/pki"
	"github.com/kedge/kedge/shared/datadir"
)

// server makes a data dir with certificates, a token and a SQLite
// database in WAL mode like kine's, and returns the open database.
func server(t *testing.T) (string, *sql.DB) {
	t.Helper()
	dir := t.TempDir()
	p := datadir.NewServer(dir)
	if _, err := pki.Ensure(pki.Request{Dir: p.TLSDir}, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.TokenFile, []byte("K10"+strings.Repeat("ab", 32)+"::server:0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(p.DBDir, 0o700); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite3", "file:"+p.SQLiteFile+"?_journal_mode=WAL&_busy_timeout=30000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec("CREATE TABLE kine (id INTEGER PRIMARY KEY, name TEXT, value BLOB)"); err != nil {
		t.Fatal(err)
	}
	return dir, db
}

// members reads a snapshot archive: its manifest and its files' contents.
func members(t *testing.T, path string) (Manifest, map[string][]byte) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var m Manifest
	files := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == ManifestName {
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			continue
		}
		files[h.Name] = b
	}
	return m, files
}

// TestSaveWhileWriting takes a snapshot while 4 writers insert rows: the
// copy passes SQLite's integrity check, holds every row committed before
// the save began, and the archive carries the CAs, keys and token, 0600.
func TestSaveWhileWriting(t *testing.T) {
	dataDir, db := server(t)
	for i := range 200 {
		if _, err := db.Exec("INSERT INTO kine (name, value) VALUES (?, ?)", fmt.Sprint("before-", i), make([]byte, 512)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				if _, err := db.Exec("INSERT INTO kine (name, value) VALUES (?, ?)", fmt.Sprintf("during-%d-%d", w, i), make([]byte, 512)); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		})
	}
	snapDir := filepath.Join(dataDir, "snaps")
	path, err := Save(t.Context(), Request{DataDir: dataDir, Dir: snapDir, Name: "on-demand", Node: "edge-1", Now: time.Unix(1700000000, 0)})
	stop()
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(path) != "on-demand-edge-1-1700000000.tar.gz" {
		t.Errorf("file %s", path)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("snapshot mode: %v %v, want 0600", st.Mode(), err)
	}
	m, files := members(t, path)
	for _, want := range []string{"server/db/state.db", "server/token", "server/tls/server-ca.key", "server/tls/client-ca.crt", "server/tls/service-account.key"} {
		if _, ok := files[want]; !ok || !slices.Contains(m.Files, want) {
			t.Errorf("%s is not in the snapshot (manifest %v)", want, m.Files)
		}
	}
	if m.Format != Format || m.Datastore != "sqlite" || m.Node != "edge-1" || m.Name != "on-demand-edge-1-1700000000" {
		t.Errorf("manifest %+v", m)
	}
	if len(m.SHA256) != len(files) {
		t.Errorf("%d checksums for %d members", len(m.SHA256), len(files))
	}
	for name, b := range files {
		if sum := sha256.Sum256(b); m.SHA256[name] != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: sha256 in the manifest %q does not match the member", name, m.SHA256[name])
		}
	}
	copyFile := filepath.Join(t.TempDir(), "state.db")
	if err := os.WriteFile(copyFile, files["server/db/state.db"], 0o600); err != nil {
		t.Fatal(err)
	}
	restored, err := sql.Open("sqlite3", "file:"+copyFile+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	var check string
	if err := restored.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check of the copy: %q %v", check, err)
	}
	var before int
	if err := restored.QueryRow("SELECT count(*) FROM kine WHERE name LIKE 'before-%'").Scan(&before); err != nil || before != 200 {
		t.Errorf("rows committed before the save: %d in the copy (%v), want 200", before, err)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(snapDir, ".*")); len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

func TestSaveRefuses(t *testing.T) {
	dataDir, _ := server(t)
	if _, err := Save(t.Context(), Request{DataDir: dataDir, Dir: t.TempDir(), Name: "a/b", Node: "n", Now: time.Now()}); err == nil {
		t.Error("a name with a slash was accepted")
	}
	etcd := t.TempDir()
	if err := os.MkdirAll(datadir.NewServer(etcd).EtcdDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := Save(t.Context(), Request{DataDir: etcd, Dir: t.TempDir(), Name: "x", Node: "n", Now: time.Now(), EtcdEndpoint: "https://127.0.0.1:1"}); err == nil || !strings.Contains(err.Error(), "etcd snapshot") {
		t.Errorf("an etcd data dir: err = %v", err)
	}
	if _, err := Save(t.Context(), Request{DataDir: t.TempDir(), Dir: t.TempDir(), Name: "x", Node: "n", Now: time.Now()}); err == nil {
		t.Error("an empty data dir was saved")
	}
}

func TestListDeletePrune(t *testing.T) {
	dir := t.TempDir()
	base := time.Now().Add(-time.Hour)
	for i, name := range []string{"scheduled-n-1", "on-demand-n-2", "scheduled-n-3", "scheduled-n-4", "scheduled-n-5"} {
		p := filepath.Join(dir, name+Suffix)
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		mt := base.Add(time.Duration(i) * time.Minute)
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "notes.txt"), nil, 0o600)
	names := func() []string {
		files, err := List(dir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, f := range files {
			out = append(out, f.Name)
		}
		return out
	}
	if got := names(); !slices.Equal(got, []string{"scheduled-n-1", "on-demand-n-2", "scheduled-n-3", "scheduled-n-4", "scheduled-n-5"}) {
		t.Fatalf("List = %v, want oldest first and only snapshots", got)
	}
	removed, err := Prune(dir, "scheduled", 2)
	if err != nil || !slices.Equal(removed, []string{"scheduled-n-1", "scheduled-n-3"}) {
		t.Fatalf("Prune = %v %v", removed, err)
	}
	if got := names(); !slices.Equal(got, []string{"on-demand-n-2", "scheduled-n-4", "scheduled-n-5"}) {
		t.Fatalf("after prune: %v (on-demand ones are not pruned with another name)", got)
	}
	if _, err := Prune(dir, "scheduled", 0); err == nil {
		t.Error("retention 0 accepted")
	}
	if err := Delete(dir, "scheduled-n-4", "missing"); err == nil {
		t.Error("deleting a missing snapshot succeeded")
	}
	if got := names(); len(got) != 3 {
		t.Fatalf("a failed delete removed something: %v", got)
	}
	if err := Delete(dir, "scheduled-n-4"+Suffix, "on-demand-n-2"); err != nil {
		t.Fatal(err)
	}
	if got := names(); !slices.Equal(got, []string{"scheduled-n-5"}) {
		t.Fatalf("after delete: %v", got)
	}
	if files, err := List(filepath.Join(dir, "none")); err != nil || len(files) != 0 {
		t.Errorf("a missing dir: %v %v", files, err)
	}
}

// TestSaveCarriesTheSecretsEncryptionKeys: a server with --secrets-encryption
// stores its Secrets encrypted, so a snapshot without the key could not be
// read after a restore; the key file is in the archive and comes back.
func TestSaveCarriesTheSecretsEncryptionKeys(t *testing.T) {
	dir, _ := server(t)
	p := datadir.NewServer(dir)
	if err := os.MkdirAll(filepath.Dir(p.EncryptionConfig), 0o700); err != nil {
		t.Fatal(err)
	}
	keys := []byte(`{"kind":"EncryptionConfiguration","secret":"c2VjcmV0"}`)
	if err := os.WriteFile(p.EncryptionConfig, keys, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := Save(t.Context(), Request{DataDir: dir, Dir: t.TempDir(), Name: "keys", Node: "n1", Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	m, files := members(t, out)
	name := "server/cred/encryption-config.json"
	if !slices.Contains(m.Files, name) || string(files[name]) != string(keys) {
		t.Fatalf("the archive lacks %s (manifest %v)", name, m.Files)
	}
	restored := t.TempDir()
	if err := Restore(RestoreRequest{File: out, DataDir: restored, Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(datadir.NewServer(restored).EncryptionConfig)
	if err != nil || string(got) != string(keys) {
		t.Fatalf("restored key file %q, %v", got, err)
	}
	if st, err := os.Stat(datadir.NewServer(restored).EncryptionConfig); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("restored key file mode %v, %v", st.Mode(), err)
	}
}

// TestSaveCarriesTheServerNodesPassword: the restored server knows the
// server's own node by its password, so a new host gets it back too (a new
// password would be refused when the node joins).
func TestSaveCarriesTheServerNodesPassword(t *testing.T) {
	dir, _ := server(t)
	pw := datadir.NewAgent(dir, datadir.DefaultRunDir).NodePassword
	if err := os.MkdirAll(filepath.Dir(pw), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pw, []byte("pw-of-the-server-node\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := Save(t.Context(), Request{DataDir: dir, Dir: t.TempDir(), Name: "pw", Node: "n1", Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	restored := t.TempDir()
	if err := Restore(RestoreRequest{File: out, DataDir: restored, Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	got := datadir.NewAgent(restored, datadir.DefaultRunDir).NodePassword
	if b, err := os.ReadFile(got); err != nil || string(b) != "pw-of-the-server-node\n" {
		t.Fatalf("restored node password %q, %v", b, err)
	}
	if st, err := os.Stat(got); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("restored node password mode %v, %v", st.Mode(), err)
	}
}

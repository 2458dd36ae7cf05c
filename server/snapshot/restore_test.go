package snapshot

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kedge/kedge/shared/datadir"
	"github.com/kedge/kedge/shared/token"
)

func TestRestoreOntoANewHostAndOverAnOldDatabase(t *testing.T) {
	dataDir, db := server(t)
	if _, err := db.Exec("INSERT INTO kine (name, value) VALUES ('kept', x'00')"); err != nil {
		t.Fatal(err)
	}
	file, err := Save(t.Context(), Request{DataDir: dataDir, Dir: t.TempDir(), Name: "x", Node: "n", Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	// A new, empty host (the data dir does not exist yet), given the token.
	fresh := filepath.Join(t.TempDir(), "kedge")
	tok, err := token.Read(datadir.NewServer(dataDir).TokenFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := Restore(RestoreRequest{File: file, DataDir: fresh, Now: time.Unix(1, 0), Token: tok}); err != nil {
		t.Fatal(err)
	}
	src, dst := datadir.NewServer(dataDir), datadir.NewServer(fresh)
	for _, pair := range [][2]string{{src.TokenFile, dst.TokenFile}, {filepath.Join(src.TLSDir, "server-ca.crt"), filepath.Join(dst.TLSDir, "server-ca.crt")},
		{filepath.Join(src.TLSDir, "server-ca.key"), filepath.Join(dst.TLSDir, "server-ca.key")}} {
		a, _ := os.ReadFile(pair[0])
		b, err := os.ReadFile(pair[1])
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s not restored as it was (%v)", pair[1], err)
		}
	}
	restored, err := sql.Open("sqlite3", "file:"+dst.SQLiteFile+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := restored.QueryRow("SELECT count(*) FROM kine WHERE name = 'kept'").Scan(&n); err != nil || n != 1 {
		t.Errorf("restored rows: %d %v", n, err)
	}
	restored.Close()
	if leftovers, _ := filepath.Glob(filepath.Join(dst.ServerDir, ".restore-*")); len(leftovers) != 0 {
		t.Errorf("staging left behind: %v", leftovers)
	}

	// Over the host's own database: the old one, its WAL, an etcd dir and
	// the TLS dir are kept aside.
	os.WriteFile(dst.SQLiteFile+"-wal", []byte("stale"), 0o600)
	os.MkdirAll(filepath.Join(dst.EtcdDir, "member"), 0o700)
	if err := Restore(RestoreRequest{File: file, DataDir: fresh, Now: time.Unix(2, 0)}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dst.SQLiteFile + ".before-restore-2", dst.SQLiteFile + "-wal.before-restore-2", dst.EtcdDir + ".before-restore-2", dst.TLSDir + ".before-restore-2"} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	for _, p := range []string{dst.SQLiteFile + "-wal", dst.EtcdDir} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s is still next to the restored database", p)
		}
	}
}

// archive writes a tar.gz with the given members (manifest first if m),
// filling in the format and the members' sha256 unless m sets them.
func archive(t *testing.T, m *Manifest, members map[string]string) string {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	add := func(name string, b []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(b)), Typeflag: tar.TypeReg})
		tw.Write(b)
	}
	if m != nil {
		if m.Format == 0 {
			m.Format = Format
		}
		if m.SHA256 == nil {
			m.SHA256 = map[string]string{}
			for _, name := range m.Files {
				sum := sha256.Sum256([]byte(members[name]))
				m.SHA256[name] = hex.EncodeToString(sum[:])
			}
		}
		b, _ := json.Marshal(m)
		add(ManifestName, b)
	}
	for name, body := range members {
		add(name, []byte(body))
	}
	tw.Close()
	gz.Close()
	p := filepath.Join(t.TempDir(), "s.tar.gz")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// tree records every path below dir with its mode and content.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		info, _ := d.Info()
		v := info.Mode().String()
		if !d.IsDir() {
			b, _ := os.ReadFile(p)
			v += string(b)
		}
		out[p] = v
		return nil
	})
	return out
}

// TestRestoreRefusesBadSnapshots: each damaged, foreign or newer snapshot
// gets one --restore-path error, and neither a data dir with a server in
// it nor a new one changes at all.
func TestRestoreRefusesBadSnapshots(t *testing.T) {
	dataDir, _ := server(t)
	good, err := Save(t.Context(), Request{DataDir: dataDir, Dir: t.TempDir(), Name: "x", Node: "n", Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	whole, _ := os.ReadFile(good)
	truncated := filepath.Join(t.TempDir(), "truncated.tar.gz")
	os.WriteFile(truncated, whole[:len(whole)*2/3], 0o600)
	notGzip := filepath.Join(t.TempDir(), "x.tar.gz")
	os.WriteFile(notGzip, []byte("hello"), 0o600)
	sqlite := func(files ...string) *Manifest { return &Manifest{Datastore: DatastoreSQLite, Files: files} }
	db := map[string]string{"server/db/state.db": "x"}
	cases := map[string]struct{ file, want string }{
		"not gzip":          {notGzip, "not a kedge snapshot"},
		"truncated":         {truncated, "truncated"},
		"no manifest":       {archive(t, nil, db), "no snapshot.json first"},
		"unknown datastore": {archive(t, &Manifest{Datastore: "postgres", Files: []string{"server/db/state.db"}}, db), `datastore "postgres"`},
		"newer format":      {archive(t, &Manifest{Format: Format + 1, Datastore: DatastoreSQLite, Files: []string{"server/db/state.db"}}, db), "newer kedge"},
		"no format":         {archive(t, &Manifest{Format: -1, Datastore: DatastoreSQLite, Files: []string{"server/db/state.db"}}, db), "no format version"},
		"no database":       {archive(t, sqlite("server/token"), map[string]string{"server/token": "t"}), "no server/db/state.db"},
		"escape":            {archive(t, sqlite("server/db/state.db", "server/../../etc/passwd"), map[string]string{"server/db/state.db": "x", "server/../../etc/passwd": "x"}), "not below server/"},
		"unlisted":          {archive(t, sqlite("server/db/state.db"), map[string]string{"server/db/state.db": "x", "server/tls/extra.key": "x"}), "unexpected member"},
		"listed missing":    {archive(t, sqlite("server/db/state.db", "server/token"), db), "listed but missing"},
		"checksum": {archive(t, &Manifest{Datastore: DatastoreSQLite, Files: []string{"server/db/state.db"},
			SHA256: map[string]string{"server/db/state.db": strings.Repeat("0", 64)}}, db), "does not match its sha256"},
		"bad etcd snapshot": {archive(t, &Manifest{Datastore: DatastoreEtcd, Files: []string{EtcdMember}}, map[string]string{EtcdMember: "not bbolt"}), "restore etcd snapshot"},
	}
	for name, tc := range cases {
		for _, target := range []string{dataDir, filepath.Join(t.TempDir(), "new")} {
			before := tree(t, target)
			err := Restore(RestoreRequest{File: tc.file, DataDir: target, Now: time.Now(), EtcdMember: "n", EtcdPeerURL: "https://127.0.0.1:2380"})
			if err == nil || !strings.Contains(err.Error(), "--restore-path") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: err = %v, want a --restore-path error about %q", name, err, tc.want)
			}
			if after := tree(t, target); !equal(before, after) {
				t.Errorf("%s: the data dir %s changed", name, target)
			}
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(dataDir), "etc/passwd")); err == nil {
			t.Fatalf("%s: wrote outside the data dir", name)
		}
	}

	// The right snapshot with another cluster's token.
	other := token.Token{Username: token.ServerUser, Secret: "another-cluster-secret"}
	before := tree(t, dataDir)
	if err := Restore(RestoreRequest{File: good, DataDir: dataDir, Now: time.Now(), Token: other}); err == nil || !strings.Contains(err.Error(), "--token is not this snapshot's") {
		t.Errorf("a wrong token: err = %v", err)
	}
	if !equal(before, tree(t, dataDir)) {
		t.Error("a wrong token changed the data dir")
	}
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

package snapshot

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kedge/kedge/shared/datadir"
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
	// A new, empty host.
	fresh := t.TempDir()
	if err := Restore(file, fresh, time.Unix(1, 0)); err != nil {
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

	// Over the host's own database: the old one and its WAL are kept aside.
	os.WriteFile(dst.SQLiteFile+"-wal", []byte("stale"), 0o600)
	if err := Restore(file, fresh, time.Unix(2, 0)); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dst.SQLiteFile + ".before-restore-2", dst.SQLiteFile + "-wal.before-restore-2"} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	if _, err := os.Stat(dst.SQLiteFile + "-wal"); err == nil {
		t.Error("the stale WAL is still next to the restored database")
	}
}

// archive writes a tar.gz with the given members (manifest first if m).
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

func TestRestoreRefusesBadSnapshots(t *testing.T) {
	notGzip := filepath.Join(t.TempDir(), "x.tar.gz")
	os.WriteFile(notGzip, []byte("hello"), 0o600)
	sqlite := func(files ...string) *Manifest { return &Manifest{Datastore: "sqlite", Files: files} }
	for name, file := range map[string]string{
		"not gzip":       notGzip,
		"no manifest":    archive(t, nil, map[string]string{"server/db/state.db": "x"}),
		"etcd":           archive(t, &Manifest{Datastore: "etcd", Files: []string{"server/db/state.db"}}, map[string]string{"server/db/state.db": "x"}),
		"no database":    archive(t, sqlite("server/token"), map[string]string{"server/token": "t"}),
		"escape":         archive(t, sqlite("server/db/state.db", "server/../../etc/passwd"), map[string]string{"server/db/state.db": "x", "server/../../etc/passwd": "x"}),
		"unlisted":       archive(t, sqlite("server/db/state.db"), map[string]string{"server/db/state.db": "x", "server/tls/extra.key": "x"}),
		"listed missing": archive(t, sqlite("server/db/state.db", "server/token"), map[string]string{"server/db/state.db": "x"}),
	} {
		dir := t.TempDir()
		if err := Restore(file, dir, time.Now()); err == nil || !strings.Contains(err.Error(), "--restore-path") {
			t.Errorf("%s: err = %v, want a --restore-path error", name, err)
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "etc/passwd")); err == nil {
			t.Fatalf("%s: wrote outside the data dir", name)
		}
	}
}

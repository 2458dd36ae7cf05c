package kine

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kedge/kedge/scripts/testenv"
)

// kineProcessEnv makes the test binary a kine process on that directory's
// state.db (compacting every second, keeping 10 revisions) until it is
// killed: a datastore a test can kill -9.
const kineProcessEnv = "KEDGE_TEST_KINE_PROCESS_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(kineProcessEnv); dir != "" {
		file := filepath.Join(dir, "state.db")
		k := &Kine{Endpoint: "sqlite://" + file + "?" + params, Listener: "unix://" + filepath.Join(dir, "kine.sock"),
			CompactInterval: time.Second, CompactMinRetain: 10, SQLiteFile: file, MaintainInterval: time.Hour}
		if err := k.Run(context.Background(), func() {}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestCompactionCompletesAfterAKillMidway: kine is killed (SIGKILL, as a
// power cut) in the middle of a compaction of 100,000 revisions, which it
// does in transactions of 1,000; started again, it compacts the rest: the
// compact revision reaches the target and the old revisions are gone.
func TestCompactionCompletesAfterAKillMidway(t *testing.T) {
	dir := t.TempDir()
	r, stop := startIn(t, dir) // creates the schema
	stop()
	const n = 100_000
	first := r.history(t, "/mid/k", n)
	target := first + n - 1 - 10
	mid := killMidCompaction(t, r, dir)
	if mid >= target {
		t.Fatalf("the kill came after the compaction finished (%d of %d)", mid, target)
	}
	t.Logf("killed kine with the compaction at %d of %d", mid, target)

	r, stop = startIn(t, dir)
	defer stop()
	testenv.WaitUntil(t, 60*time.Second, "the compaction to finish after the restart", func() bool { return r.compactRev(t) >= target })
	if rows := r.rows(t, "/mid"); rows > 20 {
		t.Errorf("%d rows of /mid/k after compaction, want at most 20", rows)
	}
	got, err := r.cli.Get(t.Context(), "/mid/k")
	if err != nil || len(got.Kvs) != 1 || got.Kvs[0].ModRevision != first+n-1 {
		t.Fatalf("/mid/k after the restart: %v %v", got, err)
	}
	if _, err := r.cli.Get(t.Context(), "/mid/k", clientv3.WithRev(mid)); err == nil {
		t.Errorf("a read at revision %d, compacted before the kill, worked", mid)
	}
}

// killMidCompaction runs kine as a process on dir and kills it (SIGKILL)
// once its compaction has committed a transaction. It looks while holding
// SQLite's write lock (so what it reads is current and no transaction
// commits between the look and the kill), trying for the lock without
// SQLite's busy wait, whose sleeps would lose every race for the lock to
// the compaction's back-to-back transactions. It returns the compact
// revision the kill left.
func killMidCompaction(t *testing.T, r *running, dir string) int64 {
	t.Helper()
	proc := exec.Command(os.Args[0])
	proc.Env = append(os.Environ(), kineProcessEnv+"="+dir)
	out := &testenv.Output{}
	proc.Stdout, proc.Stderr = out, out
	if err := proc.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = proc.Process.Kill(); _ = proc.Wait() }()
	lock, err := sql.Open("sqlite3", "file:"+r.file+"?_txlock=immediate&_busy_timeout=0")
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		tx, err := lock.BeginTx(t.Context(), nil)
		if err != nil {
			if time.Now().After(deadline) {
				t.Fatalf("no write lock within 60 s: %v", err)
			}
			continue // busy: at once again
		}
		var rev sql.NullInt64
		err = tx.QueryRow("SELECT MAX(prev_revision) FROM kine WHERE name = 'compact_rev_key'").Scan(&rev)
		if err == nil && rev.Int64 > 0 {
			err = proc.Process.Signal(syscall.SIGKILL)
		}
		_ = tx.Rollback()
		switch {
		case err != nil:
			t.Fatal(err)
		case rev.Int64 > 0:
			return rev.Int64
		case time.Now().After(deadline):
			t.Fatalf("no compaction within 60 s\n%s", out)
		}
		time.Sleep(5 * time.Millisecond) // the compaction's turn with the lock
	}
}

// history writes n revisions of key straight into the stopped datastore's
// table, as kine would (a create, then updates each naming the one before),
// in one transaction, and returns the create's revision.
func (r *running) history(t *testing.T, key string, n int) int64 {
	t.Helper()
	tx, err := r.db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var first int64
	if err := tx.QueryRow("SELECT COALESCE(MAX(id), 0) + 1 FROM kine").Scan(&first); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("INSERT INTO kine(id, name, created, deleted, create_revision, prev_revision, lease, value, old_value) VALUES (?, ?, 1, 0, 0, 0, 0, 'v', NULL)", first, key); err != nil {
		t.Fatal(err)
	}
	stmt, err := tx.Prepare("INSERT INTO kine(id, name, created, deleted, create_revision, prev_revision, lease, value, old_value) VALUES (?, ?, 0, 0, ?, ?, 0, 'v', 'v')")
	if err != nil {
		t.Fatal(err)
	}
	for id := first + 1; id < first+int64(n); id++ {
		if _, err := stmt.Exec(id, key, first, id-1); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return first
}

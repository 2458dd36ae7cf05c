package kine

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/k3s-io/kine/pkg/metrics"
	dto "github.com/prometheus/client_model/go"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kedge/kedge/scripts/testenv"
)

// params are server/config.SQLiteParams (embedded cannot import server).
const params = "_journal_mode=WAL&_synchronous=FULL&_auto_vacuum=incremental&_busy_timeout=30000&_txlock=immediate&_stmt_cache_size=20&cache=shared"

type running struct {
	file string
	cli  *clientv3.Client
	db   *sql.DB // a separate connection to the file, for the test's queries
}

// start runs kine on a new SQLite file, compacting every second and keeping
// only the newest 10 revisions, without the periodic maintenance (the test
// calls Maintainer.Once itself).
func start(t *testing.T) *running {
	t.Helper()
	r, _ := startIn(t, t.TempDir())
	return r
}

// startIn is start on dir's state.db, which may exist; stop stops kine.
func startIn(t *testing.T, dir string) (r *running, stop func()) {
	t.Helper()
	file := filepath.Join(dir, "state.db")
	sock := "unix://" + filepath.Join(dir, "kine.sock")
	k := &Kine{Endpoint: "sqlite://" + file + "?" + params, Listener: sock,
		CompactInterval: time.Second, CompactMinRetain: 10, SQLiteFile: file, MaintainInterval: time.Hour}
	run := testenv.Start(t, k.Run)
	run.WaitReady(30 * time.Second)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{sock}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	db, err := sql.Open("sqlite3", "file:"+file+"?_busy_timeout=30000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &running{file: file, cli: cli, db: db}, func() {
		t.Helper()
		cli.Close()
		if err := run.Stop(); err != nil {
			t.Fatal(err)
		}
	}
}

// freePages is the file's freelist_count: pages compaction freed that no
// VACUUM has returned yet.
func (r *running) freePages(t *testing.T) int64 {
	t.Helper()
	var n int64
	if err := r.db.QueryRowContext(t.Context(), "PRAGMA freelist_count").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRestartSkipsTheFullVacuum: once the file is in incremental mode,
// kine's VACUUM at start (a rewrite of the whole file) is skipped; the
// pages compaction freed stay for the Maintainer to return.
func TestRestartSkipsTheFullVacuum(t *testing.T) {
	dir := t.TempDir()
	r, stop := startIn(t, dir)
	rev := r.put(t, "/big", 10, 500, strings.Repeat("x", 10<<10))
	testenv.WaitUntil(t, 30*time.Second, "compaction", func() bool { return r.compactRev(t) >= rev-10 })
	stop()
	before := r.freePages(t)
	if before < 100 {
		t.Fatalf("%d free pages after compaction, want the old revisions' pages", before)
	}
	r, stop = startIn(t, dir)
	defer stop()
	if got, err := r.cli.Get(t.Context(), "/big/0"); err != nil || len(got.Kvs) != 1 {
		t.Fatalf("after the restart: %v %v", got, err)
	}
	if after := r.freePages(t); after < before {
		t.Fatalf("free pages %d before the restart, %d after: the file was vacuumed at start", before, after)
	}
}

// put writes n values to keys prefix/0 … prefix/(keys-1), round robin, and
// returns the revision of the last write.
func (r *running) put(t *testing.T, prefix string, keys, n int, value string) int64 {
	t.Helper()
	var rev int64
	for i := range n {
		resp, err := r.cli.Put(t.Context(), fmt.Sprintf("%s/%d", prefix, i%keys), value)
		if err != nil {
			t.Fatal(err)
		}
		rev = resp.Header.Revision
	}
	return rev
}

// compactRev is the revision kine compacted to, as stored in the file.
func (r *running) compactRev(t *testing.T) int64 {
	t.Helper()
	var rev sql.NullInt64
	if err := r.db.QueryRowContext(t.Context(), "SELECT MAX(prev_revision) FROM kine WHERE name = 'compact_rev_key'").Scan(&rev); err != nil {
		t.Fatal(err)
	}
	return rev.Int64
}

func (r *running) rows(t *testing.T, prefix string) int {
	t.Helper()
	var n int
	if err := r.db.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM kine WHERE name LIKE ?", prefix+"/%").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// compactions is how many compaction passes of this process's kine ended
// with result (metrics.ResultSuccess or metrics.ResultError).
func compactions(t *testing.T, result string) float64 {
	t.Helper()
	var m dto.Metric
	if err := metrics.CompactTotal.WithLabelValues(result).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestCompactionResumesAfterAFailedOne holds SQLite's write lock from
// another connection for longer than kine's compaction timeout, so a
// compaction fails, and checks that the next ones still run: the compact
// revision advances and the old revisions are deleted (k3s#12898 reports
// compaction stopping for good after one failure).
func TestCompactionResumesAfterAFailedOne(t *testing.T) {
	r := start(t)
	rev := r.put(t, "/k", 10, 200, "v")
	testenv.WaitUntil(t, 30*time.Second, "a first compaction", func() bool { return r.compactRev(t) >= rev-10 })

	// A pass ends with a checkpoint after its last transaction: let the pass
	// end, so that the lock below meets the next pass's transaction (the
	// compactor begins one every interval) rather than that checkpoint.
	passes := compactions(t, metrics.ResultSuccess)
	testenv.WaitUntil(t, 30*time.Second, "the compaction pass to end", func() bool { return compactions(t, metrics.ResultSuccess) > passes })

	// Inject the failure: another connection's write transaction holds the
	// lock until a pass has failed (its transaction times out after 5 s).
	failed := compactions(t, metrics.ResultError)
	lock, err := sql.Open("sqlite3", "file:"+r.file+"?_txlock=exclusive&_busy_timeout=30000")
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	tx, err := lock.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("UPDATE kine SET name = name WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	testenv.WaitUntil(t, 40*time.Second, "a failed compaction", func() bool { return compactions(t, metrics.ResultError) > failed })
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	before := r.compactRev(t)

	// Compaction goes on: the compact revision advances past the new writes
	// and their old revisions are deleted.
	rev = r.put(t, "/k", 10, 200, "w")
	testenv.WaitUntil(t, 30*time.Second, "compaction after the failed one", func() bool { return r.compactRev(t) >= rev-10 })
	if after := r.compactRev(t); after <= before {
		t.Fatalf("compact revision %d, not past %d", after, before)
	}
	if n := r.rows(t, "/k"); n > 30 {
		t.Errorf("%d rows for 10 keys after compaction, want at most 30 (10 keys, 10 retained revisions, a few in flight)", n)
	}
	if _, err := r.cli.Get(t.Context(), "/k/0", clientv3.WithRev(rev-100)); err == nil || !strings.Contains(err.Error(), "compacted") {
		t.Errorf("a read at a revision before the compaction: %v, want compacted", err)
	}
}

// TestMaintainerShrinksTheFile writes and deletes 2,000 values of 10 KB,
// lets kine compact, and checks that one maintenance pass gives the space
// back: state.db plus its WAL ends below 2 MB.
func TestMaintainerShrinksTheFile(t *testing.T) {
	r := start(t)
	value := strings.Repeat("x", 10<<10)
	r.put(t, "/big", 2000, 2000, value)
	for i := range 2000 {
		// kine deletes one key per transaction, the way the apiserver asks.
		key := fmt.Sprintf("/big/%d", i)
		got, err := r.cli.Get(t.Context(), key)
		if err != nil || len(got.Kvs) != 1 {
			t.Fatalf("get %s: %v %v", key, got, err)
		}
		resp, err := r.cli.Txn(t.Context()).If(clientv3.Compare(clientv3.ModRevision(key), "=", got.Kvs[0].ModRevision)).
			Then(clientv3.OpDelete(key)).Else(clientv3.OpGet(key)).Commit()
		if err != nil || !resp.Succeeded {
			t.Fatalf("delete %s: %v %v", key, resp, err)
		}
	}
	rev := r.put(t, "/small", 1, 20, "v")
	testenv.WaitUntil(t, 60*time.Second, "compaction of the deleted values", func() bool {
		return r.compactRev(t) >= rev-10 && r.rows(t, "/big") == 0
	})
	m := &Maintainer{File: r.file}
	p, err := m.Once(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("maintenance: %d pages freed, %d -> %d bytes, vacuum %s, WAL truncate %s", p.FreedPages, p.BytesBefore, p.BytesAfter, p.Vacuum, p.Truncate)
	if p.BytesBefore < 20<<20 {
		t.Fatalf("%d bytes before maintenance: the churn did not reach the file", p.BytesBefore)
	}
	if p.BytesAfter > 2<<20 {
		t.Errorf("state.db plus WAL is %d bytes after maintenance, want at most 2 MB", p.BytesAfter)
	}
}

// TestAnExistingDatabaseTurnsIncremental: a state.db made before kedge
// asked for auto_vacuum=incremental is turned to it by kine's VACUUM at the
// next start, so the maintenance can shrink it too.
func TestAnExistingDatabaseTurnsIncremental(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "state.db")
	old := strings.Replace(params, "_auto_vacuum=incremental&", "", 1)
	for i, dsn := range []string{old, params} {
		k := &Kine{Endpoint: "sqlite://" + file + "?" + dsn, Listener: "unix://" + filepath.Join(dir, "kine.sock"), SQLiteFile: file}
		r := testenv.Start(t, k.Run)
		r.WaitReady(30 * time.Second)
		if err := r.Stop(); err != nil {
			t.Fatal(err)
		}
		db, err := sql.Open("sqlite3", "file:"+file+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		var mode int
		err = db.QueryRow("PRAGMA auto_vacuum").Scan(&mode)
		db.Close()
		if want := []int{0, 2}[i]; err != nil || mode != want {
			t.Fatalf("start %d: auto_vacuum = %d (%v), want %d", i+1, mode, err, want)
		}
	}
}

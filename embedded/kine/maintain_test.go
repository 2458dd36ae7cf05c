package kine

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// walWithReader makes a SQLite file in WAL mode with 1,000 rows in its WAL
// and a second connection reading a snapshot of it, which keeps
// wal_checkpoint(TRUNCATE) busy until release is called.
func walWithReader(t *testing.T) (file string, release func()) {
	t.Helper()
	file = filepath.Join(t.TempDir(), "state.db")
	w, err := sql.Open("sqlite3", "file:"+file+"?_journal_mode=WAL")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	if _, err := w.Exec("CREATE TABLE t (v TEXT)"); err != nil {
		t.Fatal(err)
	}
	for range 1000 {
		if _, err := w.Exec("INSERT INTO t VALUES (?)", strings.Repeat("x", 1000)); err != nil {
			t.Fatal(err)
		}
	}
	r, err := sql.Open("sqlite3", "file:"+file)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	tx, err := r.BeginTx(t.Context(), &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil || n != 1000 {
		t.Fatalf("reader: %d rows, %v", n, err)
	}
	t.Cleanup(func() { tx.Rollback() })
	return file, func() { tx.Rollback() }
}

func walSize(t *testing.T, file string) int64 {
	t.Helper()
	fi, err := os.Stat(file + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestTruncationTriesAgainWhileBusy: a truncation that finds a reader on
// the WAL is tried again within the same pass, and truncates the WAL once
// the reader is gone.
func TestTruncationTriesAgainWhileBusy(t *testing.T) {
	file, release := walWithReader(t)
	if n := walSize(t, file); n < 1<<20 {
		t.Fatalf("WAL is %d bytes before the pass, want the rows in it", n)
	}
	busy := 0
	m := &Maintainer{File: file, busyTimeout: 50 * time.Millisecond, truncatePauses: []time.Duration{10 * time.Millisecond, 10 * time.Millisecond},
		onBusy: func() {
			busy++
			release()
		}}
	p, err := m.Once(t.Context())
	if err != nil {
		t.Fatalf("pass: %v", err)
	}
	if busy != 1 {
		t.Errorf("the truncation found the WAL busy %d times, want once (the reader)", busy)
	}
	if n := walSize(t, file); n != 0 {
		t.Errorf("WAL is %d bytes after the pass, want 0", n)
	}
	if p.BytesAfter >= p.BytesBefore {
		t.Errorf("pass: %d -> %d bytes, want smaller", p.BytesBefore, p.BytesAfter)
	}
}

// TestTruncationGivesUpAfterItsTries: a reader that stays makes the pass
// fail after its tries (one and one per pause), with the rows all there; the
// next pass, with the reader gone, truncates.
func TestTruncationGivesUpAfterItsTries(t *testing.T) {
	file, release := walWithReader(t)
	busy := 0
	m := &Maintainer{File: file, busyTimeout: 20 * time.Millisecond, truncatePauses: []time.Duration{10 * time.Millisecond, 10 * time.Millisecond},
		onBusy: func() { busy++ }}
	if _, err := m.Once(t.Context()); err == nil || !strings.Contains(err.Error(), "busy 3 times") {
		t.Fatalf("pass with a reader that stays: %v, want busy 3 times", err)
	}
	if busy != 3 {
		t.Errorf("onBusy called %d times, want 3", busy)
	}
	release()
	if _, err := m.Once(t.Context()); err != nil {
		t.Fatalf("pass after the reader left: %v", err)
	}
	if n := walSize(t, file); n != 0 {
		t.Errorf("WAL is %d bytes after the pass, want 0", n)
	}
	db, err := sql.Open("sqlite3", "file:"+file+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil || n != 1000 {
		t.Errorf("after the passes: %d rows (%v), want 1000", n, err)
	}
}

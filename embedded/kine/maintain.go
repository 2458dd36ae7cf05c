package kine

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"time"

	_ "github.com/mattn/go-sqlite3" // kine's SQLite driver
)

// vacuumStep is how many free pages one incremental_vacuum transaction
// returns to the file system (16 MB of 4 KB pages), so that kine's writers
// never wait long for the write lock.
const vacuumStep = 4096

// Maintainer keeps kine's SQLite file bounded while kine runs:
//   - it returns the pages that compaction freed to the file system
//     (PRAGMA incremental_vacuum), so the file shrinks after objects are
//     deleted; this works on a database in auto_vacuum=INCREMENTAL mode,
//     which the DSN asks for and kine's VACUUM at start turns on;
//   - it truncates the WAL (PRAGMA wal_checkpoint(TRUNCATE)): SQLite's own
//     automatic checkpoints reuse the WAL but never make the file smaller,
//     and cannot finish while a reader holds an old snapshot, so one burst
//     of writes would otherwise keep a large WAL on disk for good.
//
// It uses its own connection (not kine's pool, whose shared cache would
// make the two lock each other's tables).
type Maintainer struct {
	File string
	Log  *slog.Logger

	// busyTimeout and truncatePauses are the defaults below; tests shorten
	// them. onBusy, if set, is called after each truncation found busy.
	busyTimeout    time.Duration
	truncatePauses []time.Duration
	onBusy         func()
}

// truncatePauses are the waits before each new try of a WAL truncation that
// found the database busy (each try itself waits up to the busy timeout).
// A busy truncation is usually a compaction's burst of write transactions
// or a reader's snapshot; both end within seconds, and without a retry the
// WAL would keep its size for a whole maintenance interval.
var truncatePauses = []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second}

// Run maintains the file every interval until ctx is done. A pass that
// fails (say, the database is busy for longer than the busy timeout) is
// logged and tried again at the next interval.
func (m *Maintainer) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := m.Once(ctx); err != nil && ctx.Err() == nil {
			m.log().Warn("datastore maintenance failed; trying again later", "err", err)
		}
	}
}

// Pass is what one maintenance pass did.
type Pass struct {
	FreedPages       int64
	BytesBefore      int64 // state.db plus its WAL, before the pass
	BytesAfter       int64
	Vacuum, Truncate time.Duration
}

// Once runs one maintenance pass and says what it did.
func (m *Maintainer) Once(ctx context.Context) (Pass, error) {
	p := Pass{BytesBefore: m.size()}
	busyTimeout := cmp.Or(m.busyTimeout, 5*time.Second)
	db, err := sql.Open("sqlite3", fmt.Sprintf("file:%s?_busy_timeout=%d", m.File, busyTimeout.Milliseconds()))
	if err != nil {
		return p, fmt.Errorf("open %s: %w", m.File, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)

	start := time.Now()
	// A database that is not in incremental mode frees nothing.
	var mode int
	if err := db.QueryRowContext(ctx, "PRAGMA auto_vacuum").Scan(&mode); err != nil {
		return p, fmt.Errorf("auto_vacuum: %w", err)
	}
	for mode == 2 && ctx.Err() == nil {
		var free int64
		if err := db.QueryRowContext(ctx, "PRAGMA freelist_count").Scan(&free); err != nil {
			return p, fmt.Errorf("freelist_count: %w", err)
		}
		if free == 0 {
			break
		}
		if err := drain(ctx, db, fmt.Sprintf("PRAGMA incremental_vacuum(%d)", vacuumStep)); err != nil {
			return p, fmt.Errorf("incremental_vacuum: %w", err)
		}
		p.FreedPages += min(free, vacuumStep)
	}
	p.Vacuum = time.Since(start)

	start = time.Now()
	tries, err := m.truncate(ctx, db)
	p.Truncate = time.Since(start)
	p.BytesAfter = m.size()
	if err != nil {
		return p, err
	}
	m.log().Debug("datastore maintenance", "freedPages", p.FreedPages, "bytesBefore", p.BytesBefore,
		"bytesAfter", p.BytesAfter, "vacuum", p.Vacuum, "truncate", p.Truncate, "truncateTries", tries)
	return p, nil
}

// truncate checkpoints the WAL and truncates it to zero bytes, trying again
// after each pause while SQLite answers busy. It returns how many tries it
// took.
func (m *Maintainer) truncate(ctx context.Context, db *sql.DB) (int, error) {
	pauses := m.truncatePauses
	if pauses == nil {
		pauses = truncatePauses
	}
	for try := 1; ; try++ {
		var busy, logFrames, checkpointed int
		if err := db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &checkpointed); err != nil {
			return try, fmt.Errorf("wal_checkpoint: %w", err)
		}
		if busy == 0 {
			return try, nil
		}
		if m.onBusy != nil {
			m.onBusy()
		}
		if try > len(pauses) {
			return try, fmt.Errorf("wal_checkpoint(TRUNCATE) found the database busy %d times: a reader or writer kept it busy", try)
		}
		select {
		case <-ctx.Done():
			return try, ctx.Err()
		case <-time.After(pauses[try-1]):
		}
	}
}

// Incremental reports whether the SQLite file exists and is in
// auto_vacuum=INCREMENTAL mode. Call it before kine opens the file.
func Incremental(ctx context.Context, file string) (bool, error) {
	if _, err := os.Stat(file); err != nil {
		if os.IsNotExist(err) {
			return false, nil
		}
		return false, err
	}
	db, err := sql.Open("sqlite3", "file:"+file+"?_busy_timeout=5000")
	if err != nil {
		return false, fmt.Errorf("open %s: %w", file, err)
	}
	defer db.Close()
	var mode int
	if err := db.QueryRowContext(ctx, "PRAGMA auto_vacuum").Scan(&mode); err != nil {
		return false, fmt.Errorf("auto_vacuum of %s: %w", file, err)
	}
	return mode == 2, nil
}

// drain runs a statement to its end: incremental_vacuum frees one page per
// step, so a plain Exec (one step) would free a single page.
func drain(ctx context.Context, db *sql.DB, stmt string) error {
	rows, err := db.QueryContext(ctx, stmt)
	if err != nil {
		return err
	}
	for rows.Next() {
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return rows.Close()
}

// size is the database file plus its WAL, in bytes.
func (m *Maintainer) size() int64 {
	var n int64
	for _, f := range []string{m.File, m.File + "-wal"} {
		if fi, err := os.Stat(f); err == nil {
			n += fi.Size()
		}
	}
	return n
}

func (m *Maintainer) log() *slog.Logger {
	if m.Log == nil {
		return slog.Default()
	}
	return m.Log
}

// Package sqlitesize checks on the real binary that kedge keeps its SQLite
// file bounded: under churn with a constant reader on the file the WAL
// stays bounded, and after the objects are deleted and compacted the file
// shrinks back to about its size before the churn.
package sqlitesize

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3" // the driver kine uses for state.db
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kedge/kedge/server/integration/harness"
	"github.com/kedge/kedge/shared/datadir"
)

const (
	objects   = 2000
	valueSize = 10 << 10
	// workers is how many clients write at once. SQLite takes one writer
	// at a time; more clients only queue longer (with the test run's other
	// servers on the same two cores, 16 queued past the client timeout).
	workers = 4
	// walBound is the most the WAL may hold at any time during the churn,
	// with a reader always on the file (SQLite's automatic checkpoints
	// cannot restart the WAL then; kedge's truncation does, between bursts
	// of writes). Measured: 39–89 MB for about 80 MB written, and 134 MB
	// once in a full CI run, where the reader holds its snapshot longer on
	// the loaded cores. The bound catches growth with the data written
	// (a WAL never truncated), not the spread of one run.
	walBound = 256 << 20
	// shrinkSlack is how much larger than before the churn the file may
	// stay once the objects are deleted, compacted and vacuumed.
	shrinkSlack = 4 << 20
)

func TestSQLiteShrinksAfterChurn(t *testing.T) {
	dir := t.TempDir()
	c := harness.NewConfig(t, dir)
	c.DatastoreCompactInterval = 2 * time.Second
	c.DatastoreMaintainInterval = 5 * time.Second
	srv := harness.StartBinary(t, c)
	file := datadir.NewServer(dir).SQLiteFile
	cs := client(t, c.WriteKubeconfig)

	stopReader := constantReader(t, file)
	defer stopReader()
	var walMax atomic.Int64
	stopSampling := sample(file, &walMax)
	defer stopSampling()

	baseline := size(file)
	value := strings.Repeat("x", valueSize)
	start := time.Now()
	parallel(t, func(i int) error {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("churn-%d", i), Namespace: "default"}, Data: map[string]string{"v": value}}
		_, err := cs.CoreV1().ConfigMaps("default").Create(t.Context(), cm, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil // an earlier try that timed out created it
		}
		return err
	})
	full := size(file)
	t.Logf("%d ConfigMaps of %d KB created in %s: state.db+WAL %.1f MB (%.1f MB before)", objects, valueSize>>10, time.Since(start).Round(time.Millisecond), mb(full), mb(baseline))
	parallel(t, func(i int) error {
		err := cs.CoreV1().ConfigMaps("default").Delete(t.Context(), fmt.Sprintf("churn-%d", i), metav1.DeleteOptions{})
		if apierrors.IsNotFound(err) {
			return nil // an earlier try that timed out deleted it
		}
		return err
	})
	// kine keeps the newest 1,000 revisions: move the deletions out of them.
	parallel(t, func(i int) error {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("filler-%d", i%workers), Namespace: "default"},
			Data: map[string]string{"i": strconv.Itoa(i)}} // a change, so a new revision
		_, err := cs.CoreV1().ConfigMaps("default").Update(t.Context(), cm, metav1.UpdateOptions{})
		if apierrors.IsNotFound(err) {
			_, err = cs.CoreV1().ConfigMaps("default").Create(t.Context(), cm, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				return nil
			}
		}
		return err
	})
	afterChurn := size(file)
	deleted := time.Now()
	harness.WaitFor(t, 3*time.Minute, "state.db+WAL back near its size before the churn", func() error {
		if n := size(file); n > baseline+shrinkSlack {
			return fmt.Errorf("%.1f MB (%s), want at most %.1f MB", mb(n), describe(file), mb(baseline+shrinkSlack))
		}
		return nil
	})
	t.Logf("after deleting them: %.1f MB, %.1f MB %s later (compaction every 2 s, vacuum and WAL truncation every 5 s); largest WAL during the churn %.1f MB",
		mb(afterChurn), mb(size(file)), time.Since(deleted).Round(time.Second), mb(walMax.Load()))
	if w := walMax.Load(); w > walBound {
		t.Errorf("the WAL reached %.1f MB during the churn, want at most %.1f MB", mb(w), mb(walBound))
	}
	srv.Stop(t)
}

// describe says what the file holds, for a failure message.
func describe(file string) string {
	db, err := sql.Open("sqlite3", "file:"+file+"?mode=ro&_busy_timeout=30000")
	if err != nil {
		return err.Error()
	}
	defer db.Close()
	var pages, free, mode, rows int64
	var compact sql.NullInt64
	err = db.QueryRow(`SELECT (SELECT page_count FROM pragma_page_count()), (SELECT freelist_count FROM pragma_freelist_count()),
		(SELECT auto_vacuum FROM pragma_auto_vacuum()), (SELECT COUNT(*) FROM kine),
		(SELECT MAX(prev_revision) FROM kine WHERE name = 'compact_rev_key')`).Scan(&pages, &free, &mode, &rows, &compact)
	if err != nil {
		return err.Error()
	}
	fi, _ := os.Stat(file + "-wal")
	var wal int64
	if fi != nil {
		wal = fi.Size()
	}
	return fmt.Sprintf("%d pages, %d free, auto_vacuum %d, %d rows, compacted to %d, WAL %.1f MB", pages, free, mode, rows, compact.Int64, mb(wal))
}

func mb(n int64) float64 { return float64(n) / (1 << 20) }

func size(file string) int64 {
	var n int64
	for _, f := range []string{file, file + "-wal"} {
		if fi, err := os.Stat(f); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// sample records the largest WAL size it sees until stopped.
func sample(file string, walMax *atomic.Int64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			if fi, err := os.Stat(file + "-wal"); err == nil && fi.Size() > walMax.Load() {
				walMax.Store(fi.Size())
			}
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// constantReader keeps a read transaction open on file at all times: two
// readers, each holding a snapshot for 300 ms, overlapping, so SQLite's
// automatic checkpoints never find the WAL free of readers.
func constantReader(t *testing.T, file string) (stop func()) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+file+"?mode=ro&_busy_timeout=30000")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for r := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(r) * 150 * time.Millisecond)
			for ctx.Err() == nil {
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					return
				}
				var n int
				_ = tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM kine").Scan(&n)
				select {
				case <-ctx.Done():
				case <-time.After(300 * time.Millisecond):
				}
				_ = tx.Rollback()
			}
		}()
	}
	return func() { cancel(); wg.Wait(); db.Close() }
}

// parallel runs do(0 … objects-1) on workers goroutines.
func parallel(t *testing.T, do func(i int) error) {
	t.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < objects; i = int(next.Add(1)) - 1 {
				// What this test measures is size, not latency: a call
				// that timed out on a busy machine is tried again.
				err := do(i)
				for try := 1; err != nil && try < 4 && isTimeout(err); try++ {
					err = do(i)
				}
				if err != nil {
					t.Errorf("%d: %v", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

// isTimeout reports a call that did not complete in time: the client's
// timeout or the apiserver's.
func isTimeout(err error) bool {
	var ne net.Error
	return apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

func client(t *testing.T, kubeconfig string) *kubernetes.Clientset {
	t.Helper()
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	rc.QPS, rc.Burst = -1, 0
	rc.Timeout = 30 * time.Second
	return kubernetes.NewForConfigOrDie(rc)
}

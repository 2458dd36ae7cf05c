// Package powercut kills the kedge server (SIGKILL) in the middle of 16
// concurrent writers, on SQLite and on embedded etcd, restarts it and checks
// that every write the API acknowledged is still there, that the database
// passes its integrity check and that the server becomes ready again.
//
// Each test does KEDGE_POWERCUT_ROUNDS rounds (default 3; the bench and the
// long run use 20) on one data dir.
package powercut

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3" // the driver kine uses for state.db
	bolt "go.etcd.io/bbolt"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kedge/kedge/server/config"
	"github.com/kedge/kedge/server/integration/harness"
	"github.com/kedge/kedge/shared/datadir"
)

const (
	writers          = 16
	objectsPerWriter = 4
	// ackedBeforeKill is how many writes a round waits to be acknowledged
	// before it kills the server, so that the kill lands while all 16
	// writers are busy.
	ackedBeforeKill = 300
	namespace       = "default"
)

func TestPowerCutSQLite(t *testing.T) {
	dir := t.TempDir()
	c := harness.NewConfig(t, dir)
	powerCut(t, c, func(t *testing.T) { sqliteIntegrity(t, datadir.NewServer(dir).SQLiteFile) }, nil)
}

func TestPowerCutEmbeddedEtcd(t *testing.T) {
	dir := t.TempDir()
	c := harness.NewConfig(t, dir)
	c.ClusterInit = true
	powerCut(t, c, nil, func(t *testing.T) {
		boltIntegrity(t, filepath.Join(datadir.NewServer(dir).EtcdDir, "member", "snap", "db"))
	})
}

func rounds(t *testing.T) int {
	s := os.Getenv("KEDGE_POWERCUT_ROUNDS")
	if s == "" {
		return 3
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("KEDGE_POWERCUT_ROUNDS=%q: want a positive number", s)
	}
	return n
}

// powerCut runs the rounds. checkRunning checks the database while the
// restarted server runs, checkStopped while no server runs (after the kill).
func powerCut(t *testing.T, c config.Config, checkRunning, checkStopped func(*testing.T)) {
	h := newHistory()
	n := rounds(t)
	srv := harness.StartBinary(t, c)
	for round := 1; round <= n; round++ {
		acked, start := h.run(t, c.WriteKubeconfig, srv)
		if t.Failed() {
			return
		}
		t.Logf("round %d: %d writes acknowledged in %s, then SIGKILL", round, acked, time.Since(start).Round(time.Millisecond))
		if checkStopped != nil {
			checkStopped(t)
		}
		restart := time.Now()
		srv = harness.StartBinary(t, c)
		select {
		case <-srv.AllReady:
		case <-time.After(60 * time.Second):
			t.Fatalf("round %d: the server did not report every component ready within 60s of the restart", round)
		}
		t.Logf("round %d: ready %s after the restart", round, time.Since(restart).Round(time.Millisecond))
		h.verify(t, client(t, c.WriteKubeconfig), round)
		if checkRunning != nil {
			checkRunning(t)
		}
		if t.Failed() {
			return
		}
	}
	srv.Stop(t)
	if checkRunning != nil {
		checkRunning(t)
	}
	if checkStopped != nil {
		checkStopped(t)
	}
}

// client is a client-go clientset without client-side throttling, so the
// writers are limited by the server alone.
func client(t *testing.T, kubeconfig string) *kubernetes.Clientset {
	t.Helper()
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	rc.QPS, rc.Burst = -1, 0
	rc.Timeout = 20 * time.Second
	return kubernetes.NewForConfigOrDie(rc)
}

// object is what the writers know about one ConfigMap: the newest value
// the API acknowledged (and its resourceVersion) and the newest value any
// writer sent, acknowledged or not.
type object struct {
	acked     int
	ackedRV   uint64
	attempted int
}

// history is every write the API acknowledged, across rounds. Each object
// belongs to one writer, so its values only grow.
type history struct {
	mu      sync.Mutex
	objects map[string]*object
}

func newHistory() *history {
	h := &history{objects: map[string]*object{}}
	for w := range writers {
		for k := range objectsPerWriter {
			h.objects[fmt.Sprintf("powercut-w%02d-%d", w, k)] = &object{}
		}
	}
	return h
}

// run starts the writers against srv, kills srv once ackedBeforeKill writes
// were acknowledged in this round, and returns when every writer stopped.
func (h *history) run(t *testing.T, kubeconfig string, srv *harness.Server) (int64, time.Time) {
	cs := client(t, kubeconfig)
	var acked atomic.Int64
	var killed atomic.Bool
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				name := fmt.Sprintf("powercut-w%02d-%d", w, i%objectsPerWriter)
				err := h.write(ctx, cs, name)
				if err != nil {
					if !killed.Load() && ctx.Err() == nil {
						t.Errorf("writer %d before the kill: %v", w, err)
						cancel()
					}
					return
				}
				acked.Add(1)
			}
		}()
	}
	deadline := time.Now().Add(2 * time.Minute)
	for acked.Load() < ackedBeforeKill && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	if acked.Load() < ackedBeforeKill && ctx.Err() == nil {
		t.Errorf("only %d writes acknowledged within 2 minutes", acked.Load())
	}
	killed.Store(true)
	srv.Kill(t)
	wg.Wait()
	return acked.Load(), start
}

// write sends the next value of name (an update, or a create if it does not
// exist yet) and records it if the API acknowledges it.
func (h *history) write(ctx context.Context, cs *kubernetes.Clientset, name string) error {
	h.mu.Lock()
	o := h.objects[name]
	o.attempted++
	seq := o.attempted
	h.mu.Unlock()
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Data:       map[string]string{"seq": strconv.Itoa(seq)},
	}
	cms := cs.CoreV1().ConfigMaps(namespace)
	got, err := cms.Update(ctx, cm, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		got, err = cms.Create(ctx, cm, metav1.CreateOptions{})
	}
	if err != nil {
		return err
	}
	rv, err := strconv.ParseUint(got.ResourceVersion, 10, 64)
	if err != nil {
		return fmt.Errorf("%s: resourceVersion %q: %w", name, got.ResourceVersion, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if seq > o.acked {
		o.acked, o.ackedRV = seq, rv
	}
	return nil
}

// verify checks every object against what the API acknowledged: its value
// is at least the last acknowledged one (a write in flight at the kill may
// or may not have landed) and never one nobody sent, and its
// resourceVersion is not older than the acknowledged one.
func (h *history) verify(t *testing.T, cs *kubernetes.Clientset, round int) {
	t.Helper()
	list, err := cs.CoreV1().ConfigMaps(namespace).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("round %d: list after the restart: %v", round, err)
	}
	stored := map[string]corev1.ConfigMap{}
	for _, cm := range list.Items {
		stored[cm.Name] = cm
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	checked := 0
	for name, o := range h.objects {
		if o.acked == 0 {
			continue
		}
		checked++
		cm, ok := stored[name]
		if !ok {
			t.Errorf("round %d: %s: acknowledged (value %d, resourceVersion %d) but gone after the restart", round, name, o.acked, o.ackedRV)
			continue
		}
		seq, _ := strconv.Atoi(cm.Data["seq"])
		rv, _ := strconv.ParseUint(cm.ResourceVersion, 10, 64)
		switch {
		case seq < o.acked:
			t.Errorf("round %d: %s: value %d after the restart, but %d was acknowledged", round, name, seq, o.acked)
		case seq > o.attempted:
			t.Errorf("round %d: %s: value %d after the restart, but no writer sent more than %d", round, name, seq, o.attempted)
		case rv < o.ackedRV:
			t.Errorf("round %d: %s: resourceVersion %d after the restart, older than the acknowledged %d", round, name, rv, o.ackedRV)
		}
		// The next round continues from what is stored.
		o.attempted = max(o.attempted, seq)
	}
	if checked == 0 {
		t.Errorf("round %d: no write was acknowledged", round)
	}
}

// sqliteIntegrity runs PRAGMA integrity_check on file, read-only. It works
// with the server running: in WAL mode a reader blocks no writer.
func sqliteIntegrity(t *testing.T, file string) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+file+"?mode=ro&_busy_timeout=30000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	rows, err := db.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		t.Fatalf("PRAGMA integrity_check: %v", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		problems = append(problems, line)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("PRAGMA integrity_check: %v", err)
	}
	if len(problems) != 1 || problems[0] != "ok" {
		t.Errorf("PRAGMA integrity_check on %s: %q", file, problems)
	}
}

// boltIntegrity checks etcd's bbolt file with no server running (etcd holds
// an exclusive lock on it while it runs).
func boltIntegrity(t *testing.T, file string) {
	t.Helper()
	db, err := bolt.Open(file, 0o400, &bolt.Options{ReadOnly: true, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("open %s: %v", file, err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
	if err != nil {
		t.Errorf("bbolt check of %s: %v", file, err)
	}
}

package snapshot

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/kedge/kedge/shared/datadir"
)

// fakeClock hands each wait the Scheduler asks for to the test, which
// fires it (moving the time on by the wait) when it wants.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits chan wait
}

type wait struct {
	d    time.Duration
	fire chan time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	w := wait{d: d, fire: make(chan time.Time, 1)}
	c.waits <- w
	return w.fire
}

// next returns the Scheduler's next wait (it asks for one only after the
// previous snapshot and prune are done).
func (c *fakeClock) next(t *testing.T) wait {
	t.Helper()
	select {
	case w := <-c.waits:
		return w
	case <-time.After(30 * time.Second):
		t.Fatal("the scheduler did not wait for its next time")
		return wait{}
	}
}

func (c *fakeClock) fire(w wait) {
	c.mu.Lock()
	c.now = c.now.Add(w.d)
	now := c.now
	c.mu.Unlock()
	w.fire <- now
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	files, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		out = append(out, f.Name)
	}
	slices.Sort(out)
	return out
}

// TestSchedulerTakesAndPrunes runs the default schedule (every 12 hours)
// on a fake clock: it waits until the next 00:00 or 12:00, saves a
// "scheduled" snapshot each time, keeps the newest Retention of them, and
// leaves an on-demand snapshot alone; a failed snapshot deletes nothing.
func TestSchedulerTakesAndPrunes(t *testing.T) {
	dataDir, _ := server(t)
	snapDir := t.TempDir()
	onDemand, err := Save(t.Context(), Request{DataDir: dataDir, Dir: snapDir, Name: DefaultName, Node: "edge", Now: time.Unix(1000, 0)})
	if err != nil {
		t.Fatal(err)
	}
	schedule, err := cron.ParseStandard("0 */12 * * *")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 3, 1, 5, 30, 0, 0, time.Local)
	clock := &fakeClock{now: start, waits: make(chan wait)}
	s := &Scheduler{Schedule: schedule, Retention: 2, Clock: clock, Log: slog.New(slog.DiscardHandler),
		Request: Request{DataDir: dataDir, Dir: snapDir, Node: "edge"}}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	readyCalled := make(chan struct{})
	go func() { done <- s.Run(ctx, func() { close(readyCalled) }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	<-readyCalled

	w := clock.next(t)
	if w.d != 6*time.Hour+30*time.Minute {
		t.Fatalf("first wait %s, want 6h30m (05:30 to 12:00)", w.d)
	}
	var taken []string
	for i := range 4 {
		clock.fire(w)
		at := clock.Now()
		taken = append(taken, fmt.Sprintf("scheduled-edge-%d", at.Unix()))
		w = clock.next(t)
		if w.d != 12*time.Hour {
			t.Fatalf("wait %d: %s, want 12h", i, w.d)
		}
		// Distinct modification times, so that "oldest" is unambiguous.
		mt := time.Now().Add(time.Duration(i-10) * time.Minute)
		os.Chtimes(filepath.Join(snapDir, taken[i]+Suffix), mt, mt)
	}
	want := []string{"on-demand-edge-1000", taken[2], taken[3]}
	slices.Sort(want)
	if got := names(t, snapDir); !slices.Equal(got, want) {
		t.Fatalf("snapshots %v, want %v (the newest 2 scheduled and the on-demand one)", got, want)
	}
	if _, err := os.Stat(onDemand); err != nil {
		t.Fatal(err)
	}

	// The datastore is gone: the snapshot fails and nothing is pruned.
	if err := os.Remove(datadir.NewServer(dataDir).SQLiteFile); err != nil {
		t.Fatal(err)
	}
	clock.fire(w)
	clock.next(t)
	if got := names(t, snapDir); !slices.Equal(got, want) {
		t.Fatalf("after a failed snapshot: %v, want %v", got, want)
	}
}

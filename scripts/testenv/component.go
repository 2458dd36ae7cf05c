package testenv

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Running is a component's Run started by Start.
type Running struct {
	t      testing.TB
	ready  chan struct{}
	done   chan struct{}
	err    error
	seen   atomic.Bool // the test was given err (Stop, Wait)
	cancel context.CancelFunc
}

// Start calls run (a component's Run method) in a goroutine with a context
// that Stop cancels. t.Cleanup stops it and fails the test if it did not
// return within 30 s or returned an error the test was not given.
func Start(t testing.TB, run func(ctx context.Context, ready func()) error) *Running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &Running{t: t, ready: make(chan struct{}), done: make(chan struct{}), cancel: cancel}
	var once sync.Once
	go func() {
		defer close(r.done)
		r.err = run(ctx, func() { once.Do(func() { close(r.ready) }) })
	}()
	t.Cleanup(func() {
		if err := r.stop(); err != nil && !r.seen.Load() {
			t.Errorf("stopped with error: %v", err)
		}
	})
	return r
}

// Ready is closed once run called ready.
func (r *Running) Ready() <-chan struct{} { return r.ready }

// IsReady reports whether run called ready.
func (r *Running) IsReady() bool { return closed(r.ready) }

// Wait waits up to within for run to return by itself (a component that
// fails) and returns its error; it fails the test if the time passes.
func (r *Running) Wait(within time.Duration) error {
	r.t.Helper()
	select {
	case <-r.done:
		r.seen.Store(true)
		return r.err
	case <-time.After(within):
		r.t.Fatalf("did not return within %s", within)
		return nil
	}
}

// WaitReady waits up to within for ready; it fails the test if run
// returned first or the time passed.
func (r *Running) WaitReady(within time.Duration) {
	r.t.Helper()
	select {
	case <-r.ready:
	case <-r.done:
		r.t.Fatalf("returned before ready: %v", r.err)
	case <-time.After(within):
		r.t.Fatalf("not ready within %s", within)
	}
}

// Stop cancels run's context and waits up to 30 s for it to return, and
// returns its error. Calling it again returns the same error.
func (r *Running) Stop() error {
	r.seen.Store(true)
	return r.stop()
}

func (r *Running) stop() error {
	r.cancel()
	select {
	case <-r.done:
		return r.err
	case <-time.After(30 * time.Second):
		r.t.Errorf("did not return within 30s of cancel")
		return nil
	}
}

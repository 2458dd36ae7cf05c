// Package controlloop is the skeleton every kedge controller shares:
// changes seen by informers (or a Kick) wake one reconcile at a time,
// wakes that come while it runs are folded into one more run, and a
// failed run is retried with capped exponential backoff. The controller
// keeps only its reconcile (see server/controllers/servicelb: a pure
// desired-state function, then the writes).
package controlloop

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"k8s.io/client-go/tools/cache"

	"github.com/kedge/kedge/embedded/backoff"
)

// Loop runs Reconcile whenever the world may have changed. Set the fields,
// then call Run once; T is what a reconcile decided, for Decided.
type Loop[T any] struct {
	// Watch are the informers whose events (add, update, delete, and the
	// updates of a resync) wake the loop. Run runs them until it returns:
	// do not start them (or their factory) elsewhere.
	Watch []cache.SharedIndexInformer
	// Reconcile reads the caches, acts, and returns what it decided and an
	// error to be retried. It is only called from Run's goroutine, never
	// twice at once; ctx is Run's.
	Reconcile func(ctx context.Context) (T, error)
	// Retry spaces the retries of a failing reconcile; a success starts it
	// again from Retry.Min.
	Retry backoff.Backoff
	// HoldWhileRetrying makes a change seen while a retry is pending wait
	// for that retry, instead of reconciling at once (for work that must
	// not be tried sooner, such as binding a port).
	HoldWhileRetrying bool
	// What names the work in the failure log, "cannot <What>; retrying",
	// logged at FailLevel (default warn).
	What      string
	FailLevel slog.Leveler
	Log       *slog.Logger
	// Decided, if set, is called on Run's goroutine after every reconcile
	// (not after one cut short by the end of ctx) with what it returned.
	// It is the hook tests wait on.
	Decided func(decided T, err error)

	once sync.Once
	kick chan struct{}
}

// Kick asks for a reconcile. It never blocks and is safe for concurrent
// use; kicks before the next reconcile starts count as one.
func (l *Loop[T]) Kick() {
	select {
	case l.kicks() <- struct{}{}:
	default:
	}
}

func (l *Loop[T]) kicks() chan struct{} {
	l.once.Do(func() { l.kick = make(chan struct{}, 1) })
	return l.kick
}

// Run runs the informers, waits for their caches to sync, calls synced
// (if not nil), and then reconciles: once at first, then after each kick
// or due retry. It returns nil when ctx ends (after the informers
// stopped), or an error if an informer cannot be watched.
func (l *Loop[T]) Run(ctx context.Context, synced func()) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { l.Kick() },
		UpdateFunc: func(any, any) { l.Kick() },
		DeleteFunc: func(any) { l.Kick() },
	}
	var handled []cache.InformerSynced
	for _, inf := range l.Watch {
		reg, err := inf.AddEventHandler(handler)
		if err != nil {
			return fmt.Errorf("watch to %s: %w", l.What, err)
		}
		handled = append(handled, reg.HasSynced)
	}
	for _, inf := range l.Watch {
		wg.Go(func() { inf.RunWithContext(ctx) })
	}
	if !cache.WaitForCacheSync(ctx.Done(), handled...) {
		return nil // cancelled before the caches synced
	}
	if synced != nil {
		synced()
	}
	// The first reconcile sees the initial lists: their kicks are spent.
	select {
	case <-l.kicks():
	default:
	}
	l.loop(ctx)
	return nil
}

// loop reconciles until ctx ends.
func (l *Loop[T]) loop(ctx context.Context) {
	log := l.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	level := l.FailLevel
	if level == nil {
		level = slog.LevelWarn
	}
	retry := l.Retry
	var due <-chan time.Time
	for {
		decided, err := l.Reconcile(ctx)
		if ctx.Err() != nil {
			return
		}
		if l.Decided != nil {
			l.Decided(decided, err)
		}
		kicks := l.kicks()
		if err != nil {
			wait := retry.Next()
			log.Log(ctx, level.Level(), "cannot "+l.What+"; retrying", "error", err, "retry_in", wait)
			due = time.After(wait)
			if l.HoldWhileRetrying {
				kicks = nil
			}
		} else {
			retry.Reset()
			due = nil
		}
		select {
		case <-ctx.Done():
			return
		case <-kicks:
		case <-due:
		}
	}
}

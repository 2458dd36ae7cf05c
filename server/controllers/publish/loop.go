// Package publish keeps this server listed in the endpoints of a Service
// that every server serves (default/kubernetes, the metrics API): one loop
// that publishes the server every interval and withdraws it on stop, and
// one EndpointSlice writer.
package publish

import (
	"context"
	"log/slog"
	"time"
)

// withdrawTimeout bounds the withdrawal when the server stops.
const withdrawTimeout = 2 * time.Second

// Loop publishes this server every Interval and withdraws it once when
// stopped. A component's Run delegates to Loop.Run.
type Loop struct {
	// What is published, for log lines ("kubernetes endpoints").
	What     string
	Interval time.Duration // default 10 s
	// Publish writes this server in; Withdraw writes it out. Both are
	// called from Run's goroutine only, never concurrently.
	Publish  func(ctx context.Context) error
	Withdraw func(ctx context.Context) error
	Log      *slog.Logger
}

// Interval is d, or the default of 10 s when d is not positive.
func Interval(d time.Duration) time.Duration {
	if d <= 0 {
		return 10 * time.Second
	}
	return d
}

// Run calls Publish at once and then every Interval, and ready after the
// first Publish that succeeds; a failure is logged and retried at the next
// tick. When ctx ends it calls Withdraw with a fresh deadline of 2 s (best
// effort: a failure is logged at debug level) and returns nil.
func (l *Loop) Run(ctx context.Context, ready func()) error {
	isReady := false
	for {
		if err := l.Publish(ctx); err != nil {
			if ctx.Err() == nil {
				l.Log.Warn("update "+l.What, "error", err)
			}
		} else if !isReady {
			isReady = true
			ready()
		}
		select {
		case <-ctx.Done():
			stop, cancel := context.WithTimeout(context.Background(), withdrawTimeout)
			defer cancel()
			if err := l.Withdraw(stop); err != nil {
				l.Log.Debug("withdraw from "+l.What, "error", err)
			}
			return nil
		case <-time.After(Interval(l.Interval)):
		}
	}
}

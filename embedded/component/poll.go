package component

import (
	"context"
	"time"
)

// PollReady calls check every interval until it returns nil, then calls
// ready. It returns when ready was called or ctx is done. Run it in its own
// goroutine next to a component's blocking work.
func PollReady(ctx context.Context, interval time.Duration, check func(context.Context) error, ready func()) {
	for {
		attempt, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := check(attempt)
		cancel()
		if err == nil {
			ready()
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

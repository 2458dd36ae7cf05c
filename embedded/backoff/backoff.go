// Package backoff spaces out retries: capped exponential waits, optionally
// jittered. It is the one copy every retry loop of kedge uses; it lives in
// the lowest layer because embedded adapters retry too.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is the wait before each retry of one piece of work: Min, then
// twice the previous wait, at most Max (a Max below Min means every wait
// is Min). With Jitter j each wait d is drawn
// uniformly from [d, d+j·d), so that many clients do not retry in step.
// The zero value waits nothing. A Backoff is a value: copy it to start
// another sequence; one copy is not safe for concurrent use.
type Backoff struct {
	Min, Max time.Duration
	Jitter   float64
	next     time.Duration // the wait before jitter; 0 means Min
}

// Next returns the wait before the next retry and doubles the one after
// it (up to Max).
func (b *Backoff) Next() time.Duration {
	d := b.next
	if d <= 0 {
		d = b.Min
	}
	hi := max(b.Max, b.Min)
	d = min(d, hi)
	b.next = min(2*d, hi)
	return d + jitter(time.Duration(b.Jitter*float64(d)))
}

// Reset starts the sequence again from Min (after a success).
func (b *Backoff) Reset() { b.next = 0 }

// jitter is a random duration in [0, max), 0 if max is not positive.
func jitter(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	return rand.N(max)
}

// Sleep waits d or until ctx ends, and reports whether d passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

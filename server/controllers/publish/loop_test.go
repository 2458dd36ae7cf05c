package publish

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"
)

func TestLoopPublishesRetriesAndWithdraws(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	calls, readies, readyAt := 0, 0, 0
	var withdrawCtx context.Context
	l := &Loop{What: "test endpoints", Interval: time.Millisecond, Log: slog.New(slog.DiscardHandler),
		Publish: func(context.Context) error {
			calls++
			switch calls {
			case 1:
				return errors.New("apiserver not there yet")
			case 4:
				cancel()
			}
			return nil
		},
		Withdraw: func(ctx context.Context) error {
			withdrawCtx = ctx
			return ctx.Err()
		}}
	if err := l.Run(ctx, func() { readies, readyAt = readies+1, calls }); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if calls != 4 {
		t.Errorf("published %d times, want 4 (a failure is retried, then every tick until cancelled)", calls)
	}
	if readies != 1 || readyAt != 2 {
		t.Errorf("ready called %d times, after publish %d; want once, after the first success (2)", readies, readyAt)
	}
	if withdrawCtx == nil {
		t.Fatal("not withdrawn on cancel")
	}
	if dl, ok := withdrawCtx.Deadline(); !ok || time.Until(dl) > withdrawTimeout {
		t.Errorf("withdraw deadline %v (set %v), want within %s", dl, ok, withdrawTimeout)
	}
}

func TestLoopNotReadyWhilePublishFails(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	calls := 0
	l := &Loop{What: "test endpoints", Interval: time.Millisecond, Log: slog.New(slog.DiscardHandler),
		Publish: func(context.Context) error {
			if calls++; calls == 3 {
				cancel()
			}
			return errors.New("forbidden")
		},
		Withdraw: func(context.Context) error { return errors.New("still forbidden") }}
	if err := l.Run(ctx, func() { t.Error("ready without a successful publish") }); err != nil {
		t.Fatalf("Run = %v, want nil (failures are logged, not returned)", err)
	}
}

func TestInterval(t *testing.T) {
	for _, tc := range []struct{ in, want time.Duration }{
		{0, 10 * time.Second}, {-time.Second, 10 * time.Second}, {time.Second, time.Second},
	} {
		if got := Interval(tc.in); got != tc.want {
			t.Errorf("Interval(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

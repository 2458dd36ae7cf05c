package backoff

import (
	"context"
	"testing"
	"time"
)

func TestNextGrowsToTheCapAndResets(t *testing.T) {
	cases := []struct {
		name string
		b    Backoff
		want []time.Duration
	}{
		{"doubles to max", Backoff{Min: time.Second, Max: 10 * time.Second},
			[]time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}},
		{"fixed without max", Backoff{Min: 5 * time.Second},
			[]time.Duration{5 * time.Second, 5 * time.Second, 5 * time.Second}},
		{"max below min", Backoff{Min: 2 * time.Second, Max: time.Second},
			[]time.Duration{2 * time.Second, 2 * time.Second}},
		{"zero value", Backoff{}, []time.Duration{0, 0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.b
			for i, want := range tc.want {
				if got := b.Next(); got != want {
					t.Fatalf("wait %d = %v, want %v", i, got, want)
				}
			}
			b.Reset()
			if got := b.Next(); got != tc.want[0] {
				t.Fatalf("after Reset: %v, want %v", got, tc.want[0])
			}
		})
	}
}

func TestCopiesAreIndependent(t *testing.T) {
	policy := Backoff{Min: time.Second, Max: time.Minute}
	a := policy
	a.Next()
	a.Next()
	b := policy
	if got := b.Next(); got != time.Second {
		t.Fatalf("a fresh copy waits %v, want 1s", got)
	}
}

func TestJitterStaysInBounds(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: 400 * time.Millisecond, Jitter: 0.5}
	bases := []time.Duration{100, 200, 400, 400}
	seen := map[time.Duration]bool{}
	for round := range 200 {
		b.Reset()
		for _, base := range bases {
			base *= time.Millisecond
			got := b.Next()
			if got < base || got >= base+base/2 {
				t.Fatalf("round %d: wait %v outside [%v, %v)", round, got, base, base+base/2)
			}
			seen[got] = true
		}
	}
	if len(seen) < 10 {
		t.Fatalf("only %d distinct waits in 800: not jittered", len(seen))
	}
}

func TestSleepStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if Sleep(ctx, time.Hour) {
		t.Fatal("Sleep reported the hour passed after ctx was cancelled")
	}
	if !Sleep(t.Context(), 0) {
		t.Fatal("Sleep(0) reported cancel")
	}
}

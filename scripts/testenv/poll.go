package testenv

import (
	"testing"
	"time"
)

// backoff returns the next pause between polls: from 10 ms, doubling up
// to 250 ms, so fakes answer quickly and real servers are not hammered.
func backoff(d time.Duration) time.Duration {
	if d == 0 {
		return 10 * time.Millisecond
	}
	return min(2*d, 250*time.Millisecond)
}

// WaitFor calls check until it returns nil and fails the test with the last
// error if within passes first. Never sleep as synchronisation; poll state.
func WaitFor(t testing.TB, within time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	var pause time.Duration
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %v", within, what, err)
		}
		pause = backoff(pause)
		time.Sleep(pause)
	}
}

// WaitUntil calls cond until it returns true and fails the test if within
// passes first.
func WaitUntil(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	var pause time.Duration
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		pause = backoff(pause)
		time.Sleep(pause)
	}
}

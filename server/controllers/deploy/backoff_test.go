package deploy

import (
	"testing"
	"time"
)

// TestRetryBackOff: a file that keeps failing unchanged is retried less and
// less often, up to maxRetry; a change is due at once.
func TestRetryBackOff(t *testing.T) {
	s := &state{interval: 5 * time.Second, failed: map[string]failure{}}
	if !s.due("a.yaml", "c1") {
		t.Fatal("a file that never failed is not due")
	}
	var delays []time.Duration
	for range 10 {
		s.retryLater("a.yaml", "c1")
		delays = append(delays, s.failed["a.yaml"].delay)
	}
	want := []time.Duration{5, 10, 20, 40, 80, 160, 300, 300, 300, 300}
	for i, d := range delays {
		if d != want[i]*time.Second {
			t.Fatalf("delays = %v, want %v seconds", delays, want)
		}
	}
	if s.due("a.yaml", "c1") {
		t.Fatal("an unchanged failing file is due before its back-off")
	}
	if !s.due("a.yaml", "c2") {
		t.Fatal("a changed file is not due at once")
	}
	s.retryLater("a.yaml", "c2")
	if d := s.failed["a.yaml"].delay; d != 5*time.Second {
		t.Fatalf("a changed file's back-off starts at %v, want 5s", d)
	}
	s.failed["a.yaml"] = failure{checksum: "c2", next: time.Now().Add(-time.Millisecond), delay: time.Minute}
	if !s.due("a.yaml", "c2") {
		t.Fatal("not due after the back-off")
	}
}

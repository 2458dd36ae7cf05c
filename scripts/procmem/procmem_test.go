package procmem

import (
	"os"
	"testing"
)

// TestMBOfThisProcess: this test process has some resident memory, and its
// Pss is no more than its Rss.
func TestMBOfThisProcess(t *testing.T) {
	rss, pss, err := MB(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if rss < 1 || pss <= 0 || pss > rss {
		t.Fatalf("Rss %.1f MB, Pss %.1f MB: want Rss >= 1 and 0 < Pss <= Rss", rss, pss)
	}
	if _, _, err := MB(-1); err == nil {
		t.Fatal("no error for pid -1")
	}
}

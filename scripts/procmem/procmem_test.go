package procmem

import (
	"os"
	"runtime"
	"testing"
	"time"
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

// TestExecutableOfThisProcess: this test binary runs code of the runtime
// and of package testing, so their pages of .text are resident, and so is
// some of .gopclntab (the runtime reads it to walk stacks).
func TestExecutableOfThisProcess(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p, err := Executable(os.Getpid(), exe, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{".text", ".gopclntab"} {
		if p.Sections[s] <= 0 {
			t.Errorf("section %s: %d kB resident, want some", s, p.Sections[s])
		}
	}
	for _, pkg := range []string{"runtime", "testing"} {
		if p.Packages[pkg] <= 0 {
			t.Errorf("package %s: %d kB of code resident, want some\n%s", pkg, p.Packages[pkg], Top(p.Packages, 10))
		}
	}
	if _, err := Executable(os.Getpid(), "/nonexistent", 3); err == nil {
		t.Error("no error for a missing executable")
	}
}

// TestCPUSecondsGrows: half a second of spinning adds about that much CPU
// time to this process (at least 0.1 s on a busy machine, and not more than
// the wall time and the other goroutines' share).
func TestCPUSecondsGrows(t *testing.T) {
	before, err := CPUSeconds(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	start, x := time.Now(), 0
	for time.Since(start) < 500*time.Millisecond {
		x++
	}
	after, err := CPUSeconds(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if d := after - before; d < 0.1 || d > time.Since(start).Seconds()*float64(runtime.NumCPU())+0.05 {
		t.Errorf("CPU time grew by %.2f s over %s of spinning (%d)", d, time.Since(start), x)
	}
	if _, err := CPUSeconds(-1); err == nil {
		t.Error("no error for pid -1")
	}
}

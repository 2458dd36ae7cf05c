// Package memtune keeps kedge's memory footprint small on devices with
// little RAM: a tighter GC target, and releasing the executable's pages
// that were touched only while starting.
package memtune

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
)

// DefaultGCPercent is the GC target kedge uses unless GOGC is set: the
// heap may grow 50% over live data between collections instead of 100%,
// trading a little CPU for about 40 MB less resident memory on a server.
const DefaultGCPercent = 50

// SetGCDefaults applies DefaultGCPercent unless the user set GOGC.
func SetGCDefaults() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(DefaultGCPercent)
	}
}

// madvPageout asks the kernel to reclaim pages now (Linux 5.4+).
const madvPageout = 21

// ReleaseExecutablePages asks the kernel to drop this process's mappings of
// its own executable. Kubernetes' package initialisers touch most of the
// ~170 MB binary once at start; afterwards only a small part is used, and
// the rest would stay resident until memory pressure. Pages still in use
// fault back in from the page cache. It returns the bytes advised; on a
// kernel without MADV_PAGEOUT it does nothing and returns an error.
func ReleaseExecutablePages() (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	total := 0
	var errs []error
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		start, end, path, ok := parseMapsLine(sc.Text())
		if !ok || path != exe {
			continue
		}
		// A raw syscall: the region is not Go memory, so no slice is built over it.
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, start, end-start, madvPageout); errno != 0 {
			errs = append(errs, fmt.Errorf("madvise %x-%x: %w", start, end, errno))
			continue
		}
		total += int(end - start)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	return total, errors.Join(errs...)
}

// parseMapsLine parses "start-end perms offset dev inode path" and reports
// read-only or executable (never writable) file mappings.
func parseMapsLine(line string) (start, end uintptr, path string, ok bool) {
	fields := strings.Fields(line)
	if len(fields) < 6 || strings.Contains(fields[1], "w") {
		return 0, 0, "", false
	}
	lo, hi, found := strings.Cut(fields[0], "-")
	if !found {
		return 0, 0, "", false
	}
	s, err1 := strconv.ParseUint(lo, 16, 64)
	e, err2 := strconv.ParseUint(hi, 16, 64)
	if err1 != nil || err2 != nil || e <= s {
		return 0, 0, "", false
	}
	return uintptr(s), uintptr(e), strings.Join(fields[5:], " "), true
}

// ReleaseStartupPages is ReleaseExecutablePages for a process that has just
// become ready; what it released, or why it could not, is a debug line.
func ReleaseStartupPages(log *slog.Logger) {
	if n, err := ReleaseExecutablePages(); err != nil {
		log.Debug("could not release start-up pages", "error", err)
	} else {
		log.Debug("released start-up pages", "bytes", n)
	}
}

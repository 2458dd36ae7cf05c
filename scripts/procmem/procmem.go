// Package procmem reads a process's memory as the kernel reports it, for
// the benchmarks and soak tests.
package procmem

import (
	"os"
	"strconv"
	"strings"
)

// MB is a process's resident (Rss) and proportional (Pss: shared pages
// divided among the processes sharing them) memory in MB, from
// /proc/PID/smaps_rollup.
func MB(pid int) (rss, pss float64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "Rss:":
			rss = kb / 1024
		case "Pss:":
			pss = kb / 1024
		}
	}
	return rss, pss, nil
}

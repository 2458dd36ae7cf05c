package main

// Tools about file systems: df, mount.

import (
	"fmt"
	"os"
	"strings"
	"syscall"
)

func df(args []string) int {
	_, paths := flags(args, "")
	if len(paths) == 0 {
		paths = []string{"/"}
	}
	fmt.Println("Filesystem           1K-blocks      Used Available Use% Mounted on")
	for _, p := range paths {
		var s syscall.Statfs_t
		if err := syscall.Statfs(p, &s); err != nil {
			return fail("df", err)
		}
		total, free := s.Blocks*uint64(s.Bsize)/1024, s.Bavail*uint64(s.Bsize)/1024
		used := total - s.Bfree*uint64(s.Bsize)/1024
		pct := 0
		if total > 0 {
			pct = int(used * 100 / total)
		}
		fmt.Printf("%-20s %9d %9d %9d %3d%% %s\n", "overlay", total, used, free, pct, p)
	}
	return 0
}

// mount without arguments prints the mount table, as busybox does.
func mount(args []string) int {
	if len(args) > 0 {
		return fail("mount", fmt.Errorf("only listing is supported"))
	}
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return fail("mount", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 {
			fmt.Printf("%s on %s type %s (%s)\n", f[0], f[1], f[2], f[3])
		}
	}
	return 0
}

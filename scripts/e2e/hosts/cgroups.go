package hosts

// A host's cgroups: a sub-cgroup of the test's own cgroup in every
// hierarchy, which the host's processes join and which its cgroup
// namespace shows as the root.

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Pids lists the processes in the host's cgroups, its init process aside.
func (h *Host) Pids() []int {
	h.mu.Lock()
	dirs := h.cgroups
	var init int
	if h.init != nil {
		init = h.init.Cmd.Process.Pid
	}
	h.mu.Unlock()
	seen := map[int]bool{}
	var out []int
	for _, d := range dirs {
		filepath.Walk(d, func(p string, info os.FileInfo, err error) error {
			if err != nil || info.IsDir() || filepath.Base(p) != "cgroup.procs" {
				return nil
			}
			b, _ := os.ReadFile(p)
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil && pid != init && !seen[pid] {
					seen[pid] = true
					out = append(out, pid)
				}
			}
			return nil
		})
	}
	return out
}

// cgroupJoin is the start of a bash script that moves the shell into the
// host's cgroups.
func (h *Host) cgroupJoin(t testing.TB) string {
	t.Helper()
	h.mu.Lock()
	if h.cgroups == nil {
		h.cgroups = h.cgroupDirs(t)
	}
	dirs := h.cgroups
	h.mu.Unlock()
	var joins []string
	for _, dir := range dirs {
		joins = append(joins, fmt.Sprintf("echo $$ > %q", filepath.Join(dir, "cgroup.procs")))
	}
	return "set -e\n" + strings.Join(joins, "\n") + "\n"
}

// remountCgroups mounts every hierarchy of this machine again at the same
// place, now showing the new cgroup namespace's root.
func remountCgroups() string {
	var lines []string
	for _, m := range cgroupMounts() {
		if m.fstype == "cgroup2" {
			lines = append(lines, fmt.Sprintf("mkdir -p %q && mount -t cgroup2 cgroup2 %q", m.target, m.target))
		} else {
			lines = append(lines, fmt.Sprintf("mkdir -p %q && mount -t cgroup -o %s cgroup %q", m.target, m.options, m.target))
		}
	}
	return strings.Join(lines, "\n")
}

type cgroupMount struct{ target, fstype, options string }

// cgroupMounts lists this machine's cgroup hierarchies from /proc/self/mountinfo.
func cgroupMounts() []cgroupMount {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []cgroupMount
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, x := range fields {
			if x == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+3 >= len(fields) {
			continue
		}
		fstype, target := fields[sep+1], fields[4]
		if !strings.HasPrefix(target, "/sys/fs/cgroup") {
			continue
		}
		switch fstype {
		case "cgroup2":
			out = append(out, cgroupMount{target: target, fstype: fstype})
		case "cgroup":
			var opts []string
			for _, o := range strings.Split(fields[sep+3], ",") {
				if o != "rw" && o != "ro" {
					opts = append(opts, o)
				}
			}
			out = append(out, cgroupMount{target: target, fstype: fstype, options: strings.Join(opts, ",")})
		}
	}
	return out
}

// cgroupDirs creates the host's sub-cgroup under this process's cgroup in
// every hierarchy and returns their paths.
func (h *Host) cgroupDirs(t testing.TB) []string {
	t.Helper()
	own := ownCgroups()
	var dirs []string
	for _, m := range cgroupMounts() {
		rel := own[filepath.Base(m.target)]
		if m.fstype == "cgroup2" {
			rel = own[""]
		}
		dir := filepath.Join(m.target, rel, h.cgroup)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatalf("create cgroup %s: %v", dir, err)
		}
		// A v1 cpuset cgroup accepts no process until it has CPUs and memory nodes.
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if cur, err := os.ReadFile(filepath.Join(dir, f)); err == nil && strings.TrimSpace(string(cur)) == "" {
				parent, _ := os.ReadFile(filepath.Join(filepath.Dir(dir), f))
				if err := os.WriteFile(filepath.Join(dir, f), parent, 0o644); err != nil {
					t.Fatalf("set %s of %s: %v", f, dir, err)
				}
			}
		}
		dirs = append(dirs, dir)
	}
	return dirs
}

// ownCgroups maps each v1 controller list (as in the mount point name, e.g.
// "memory", "cpu,cpuacct") and "" (unified) to this process's cgroup path.
func ownCgroups() map[string]string {
	out := map[string]string{}
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return out
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		name := strings.TrimPrefix(parts[1], "name=")
		out[name] = parts[2]
		for _, c := range strings.Split(name, ",") {
			out[c] = parts[2]
		}
	}
	return out
}

package checkconfig

import (
	"bufio"
	"os"
	"strings"
)

// controller is a cgroup controller the kubelet and runc use.
type controller struct {
	name     string
	v1, v2   bool   // used on cgroup v1 / v2
	required bool   // kedge cannot run pods without it
	option   string // kernel config option, for the hint
}

var controllers = []controller{
	{name: "cpu", v1: true, v2: true, required: true, option: "CGROUP_SCHED"},
	{name: "cpuacct", v1: true, required: true, option: "CGROUP_CPUACCT"},
	{name: "cpuset", v1: true, v2: true, required: true, option: "CPUSETS"},
	{name: "memory", v1: true, v2: true, required: true, option: "MEMCG"},
	{name: "pids", v1: true, v2: true, required: true, option: "CGROUP_PIDS"},
	{name: "devices", v1: true, required: true, option: "CGROUP_DEVICE"},
	{name: "blkio", v1: true, option: "BLK_CGROUP"},
	{name: "io", v2: true, option: "BLK_CGROUP"},
	{name: "hugetlb", v1: true, v2: true, option: "CGROUP_HUGETLB"},
}

func cgroupResults(sys System) []Result {
	known := kernelControllers(sys)
	v2Root := sys.sys("fs", "cgroup", "cgroup.controllers")
	var have map[string]bool
	version := Result{Group: GroupCgroups, Name: "cgroup version", Status: OK}
	v2 := exists(v2Root)
	if v2 {
		version.Detail = "v2 (unified)"
		have = map[string]bool{}
		for _, c := range strings.Fields(readString(v2Root)) {
			have[c] = true
		}
	} else {
		have = v1Mounted(sys)
		version.Detail = "v1; the kubelet runs with failCgroupV1=false"
		if exists(sys.sys("fs", "cgroup", "unified", "cgroup.controllers")) {
			version.Detail = "v1 (hybrid, cgroup2 at /sys/fs/cgroup/unified); the kubelet runs with failCgroupV1=false"
		}
		if len(have) == 0 {
			version.Status, version.Detail = Missing, "no cgroup v1 hierarchy and no cgroup2 at "+sys.sys("fs", "cgroup")
			version.Hint = "mount cgroup2 at /sys/fs/cgroup (mount -t cgroup2 none /sys/fs/cgroup), or the v1 hierarchies"
			return []Result{version}
		}
	}
	out := []Result{version}
	for _, c := range controllers {
		if (v2 && !c.v2) || (!v2 && !c.v1) {
			continue
		}
		r := Result{Group: GroupCgroups, Name: c.name, Status: OK, Detail: "available"}
		if !v2 {
			r.Detail = "mounted"
		}
		if !have[c.name] {
			r.Status = Warn
			if c.required {
				r.Status = Missing
			}
			enabled, inKernel := known[c.name]
			switch {
			case known != nil && !inKernel:
				r.Detail = "not in this kernel"
				r.Hint = "use a kernel built with CONFIG_" + c.option
			case inKernel && !enabled:
				r.Detail = "disabled on the kernel command line"
				r.Hint = "add cgroup_enable=" + c.name + " to the kernel command line (Raspberry Pi: cgroup_enable=memory cgroup_memory=1 in /boot/firmware/cmdline.txt) and reboot"
			case v2:
				r.Detail = "not in " + v2Root
				r.Hint = "it may be bound to a cgroup v1 hierarchy; boot with systemd.unified_cgroup_hierarchy=1 or unmount that hierarchy"
			default:
				r.Detail = "not mounted"
				r.Hint = "mkdir -p /sys/fs/cgroup/" + c.name + " && mount -t cgroup -o " + c.name + " cgroup /sys/fs/cgroup/" + c.name
			}
			if !c.required {
				r.Detail += " (optional)"
			}
		}
		out = append(out, r)
	}
	return out
}

// kernelControllers reads /proc/cgroups: controller name -> enabled. It is
// nil when the file cannot be read.
func kernelControllers(sys System) map[string]bool {
	f, err := os.Open(sys.proc("cgroups"))
	if err != nil {
		return nil
	}
	defer f.Close()
	out := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		out[fields[0]] = fields[3] == "1"
	}
	return out
}

// v1Mounted returns the controllers of the cgroup v1 hierarchies mounted
// (from /proc/self/mounts).
func v1Mounted(sys System) map[string]bool {
	out := map[string]bool{}
	f, err := os.Open(sys.proc("self", "mounts"))
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || fields[2] != "cgroup" {
			continue
		}
		for _, o := range strings.Split(fields[3], ",") {
			out[o] = true
		}
	}
	return out
}

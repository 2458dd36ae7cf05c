// Package checkconfig tells what kedge needs from a machine and whether it
// is there: kernel features, cgroup controllers, commands, a default route,
// free ports, the data dir's file system and the privileges kedge runs
// with. `kedge check-config` prints its Report.
//
// The checks read the machine through System, whose file-system roots and
// functions tests replace with fixture trees and fakes. Nothing is loaded
// or changed, except that the oom_score_adj probe lowers this process's
// value by one and restores it.
package checkconfig

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	agentcontainerd "github.com/kedge/kedge/agent/runtime/containerd"
)

// Status is the verdict on one item.
type Status string

// Statuses. Missing is given only to required items; an optional item that
// is absent, or a required one that could not be told, is Warn.
const (
	OK      Status = "ok"
	Warn    Status = "warn"
	Missing Status = "MISSING"
)

// Groups, in the order they are printed.
const (
	GroupKernel     = "Kernel"
	GroupCgroups    = "cgroups"
	GroupCommands   = "Commands"
	GroupNetwork    = "Network"
	GroupStorage    = "Storage"
	GroupPrivileges = "Privileges"
)

// Result is one checked item.
type Result struct {
	Group  string `json:"group"`
	Name   string `json:"name"`
	Status Status `json:"status"`
	// Detail says what was found ("built in", "ext4, 12.3 GiB free").
	Detail string `json:"detail,omitempty"`
	// Hint says how to fix it; set when Status is not OK.
	Hint string `json:"hint,omitempty"`
}

// Report is the outcome of Check.
type Report struct {
	// Kernel is the running kernel's release.
	Kernel string `json:"kernel"`
	// ConfigSource is the kernel config file read, or "" when the kernel
	// features were probed without one.
	ConfigSource string   `json:"configSource,omitempty"`
	Results      []Result `json:"results"`
}

// Count returns how many results have status s.
func (r Report) Count(s Status) int {
	n := 0
	for _, res := range r.Results {
		if res.Status == s {
			n++
		}
	}
	return n
}

// Find returns the result named name in group, if any.
func (r Report) Find(group, name string) (Result, bool) {
	for _, res := range r.Results {
		if res.Group == group && res.Name == name {
			return res, true
		}
	}
	return Result{}, false
}

// System is the machine the checks read. Host returns the real one; tests
// point the roots at fixture trees and replace the functions.
type System struct {
	ProcRoot       string // /proc
	SysRoot        string // /sys
	BootRoot       string // /boot
	LibModulesRoot string // /lib/modules
	// DataDir is kedge's --data-dir; KubeletDir is the kubelet's root
	// (/var/lib/kubelet). Either may not exist yet.
	DataDir    string
	KubeletDir string
	// LookPath finds a command (exec.LookPath).
	LookPath func(name string) (string, error)
	// Bind tries to listen on network ("tcp" or "udp") address and closes
	// the listener at once; it returns the error of the attempt.
	Bind func(network, address string) error
	// Statfs reports the file system holding path (which exists).
	Statfs func(path string) (FS, error)
	// CanLowerOOMScoreAdj reports whether this process may lower its
	// oom_score_adj.
	CanLowerOOMScoreAdj func() bool
	// Euid is the effective user id.
	Euid int
}

// FS describes a file system.
type FS struct {
	Type       string // "ext4", "tmpfs", ...; "0x…" when unknown
	Free, Size uint64 // bytes available to unprivileged users, and in total
}

// Host is this machine, with kedge's data dir dataDir.
func Host(dataDir string) System {
	return System{
		ProcRoot: "/proc", SysRoot: "/sys", BootRoot: "/boot", LibModulesRoot: "/lib/modules",
		DataDir: dataDir, KubeletDir: "/var/lib/kubelet",
		LookPath: exec.LookPath, Bind: bind, Statfs: statfs,
		CanLowerOOMScoreAdj: agentcontainerd.CanLowerOOMScoreAdj,
		Euid:                os.Geteuid(),
	}
}

// Check runs every check against sys. It does not fail: what it cannot
// read becomes a Warn result.
func Check(sys System) Report {
	k := loadKernel(sys)
	rep := Report{Kernel: k.release, ConfigSource: k.configSource}
	rep.Results = append(rep.Results, kernelResults(k)...)
	rep.Results = append(rep.Results, cgroupResults(sys)...)
	rep.Results = append(rep.Results, commandResults(sys)...)
	rep.Results = append(rep.Results, networkResults(sys, k)...)
	rep.Results = append(rep.Results, storageResults(sys)...)
	rep.Results = append(rep.Results, privilegeResults(sys)...)
	return rep
}

// readString returns the trimmed content of path, or "" if it cannot be read.
func readString(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func (s System) proc(elem ...string) string {
	return filepath.Join(append([]string{s.ProcRoot}, elem...)...)
}

func (s System) sys(elem ...string) string {
	return filepath.Join(append([]string{s.SysRoot}, elem...)...)
}

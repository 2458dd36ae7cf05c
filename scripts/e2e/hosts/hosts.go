// Package hosts makes test hosts for end-to-end tests: each host is a
// network namespace on a bridge private to the test, with its own mount
// namespace (private /run, /var/lib/kedge, /var/lib/kubelet, /etc/kedge,
// /etc/cni, /var/lib/cni, /var/log/pods), its own hostname (UTS namespace)
// and its own cgroup namespace rooted
// in a sub-cgroup of the test's cgroup. Everything is removed by t.Cleanup,
// also when the test fails.
package hosts

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kedge/kedge/scripts/testenv"
)

// Network is a bridge with hosts attached, on 10.199.<n>.0/24.
type Network struct {
	ID     string
	Bridge string
	prefix string // "10.199.N."
	hosts  int
	dir    string
}

// HostDirs are bind-mounted per host over these paths.
var HostDirs = []string{"/run", "/var/lib/kedge", "/var/lib/kubelet", "/etc/kedge", "/etc/cni", "/var/lib/cni", "/var/log/pods"}

func run(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func runQuiet(args ...string) {
	_ = exec.Command(args[0], args[1:]...).Run()
}

// NewNetwork creates the bridge. The host side of the bridge gets .1.
func NewNetwork(t testing.TB) *Network {
	t.Helper()
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	id := hex.EncodeToString(b)
	n := &Network{ID: id, Bridge: "kb" + id, prefix: freePrefix(t, int(b[0])), dir: t.TempDir()}
	run(t, "ip", "link", "add", n.Bridge, "type", "bridge")
	t.Cleanup(func() { runQuiet("ip", "link", "del", n.Bridge) })
	run(t, "ip", "addr", "add", n.prefix+"1/24", "dev", n.Bridge)
	run(t, "ip", "link", "set", n.Bridge, "up")
	return n
}

// freePrefix is "10.199.N." for the first N from start (mod 250, plus 1)
// that no interface of this machine has an address in: another test's
// network, or one a killed test run left behind, would take the routes.
func freePrefix(t testing.TB, start int) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
			ip := ipn.IP.To4()
			used[fmt.Sprintf("%d.%d.%d.", ip[0], ip[1], ip[2])] = true
		}
	}
	for i := range 250 {
		if p := fmt.Sprintf("10.199.%d.", (start+i)%250+1); !used[p] {
			return p
		}
	}
	t.Fatal("every 10.199.N.0/24 is in use on this machine")
	return ""
}

// Gateway is the bridge's address on the host side.
func (n *Network) Gateway() string { return n.prefix + "1" }

// Host is one test machine.
type Host struct {
	Name    string
	NS      string
	IP      string
	Root    string   // per-host directories live here
	dirs    []string // private directories: HostDirs and AddHost's extra ones, parents first
	net     *Network
	cgroup  string // relative cgroup path of the host, same in every hierarchy's parent
	mu      sync.Mutex
	procs   []*Proc
	init    *Proc    // holds the host's mount, UTS and cgroup namespaces
	cgroups []string // created by the first Start, removed by cleanup
}

// AddHost creates a network namespace with a veth on the bridge. private
// names directories made private to the host besides HostDirs (an
// installer's /usr/local/bin, /etc/systemd/system, /var/log, ...).
func (n *Network) AddHost(t testing.TB, name string, private ...string) *Host {
	t.Helper()
	n.hosts++
	dirs := append(slices.Clone(HostDirs), private...)
	sort.Strings(dirs) // a parent is bound before the directories in it
	h := &Host{Name: name, NS: "k" + n.ID + "-" + name, IP: fmt.Sprintf("%s%d", n.prefix, n.hosts+1),
		Root: filepath.Join(n.dir, name), dirs: dirs, net: n}
	if err := os.MkdirAll(h.Root, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, "ip", "netns", "add", h.NS)
	t.Cleanup(func() { h.cleanup(t) })
	veth := fmt.Sprintf("v%s%d", n.ID, n.hosts)
	run(t, "ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", h.NS)
	run(t, "ip", "link", "set", veth, "master", n.Bridge, "up")
	run(t, "ip", "-n", h.NS, "addr", "add", h.IP+"/24", "dev", "eth0")
	run(t, "ip", "-n", h.NS, "link", "set", "eth0", "up")
	run(t, "ip", "-n", h.NS, "link", "set", "lo", "up")
	run(t, "ip", "-n", h.NS, "route", "add", "default", "via", n.Gateway())
	for _, d := range h.dirs {
		if err := os.MkdirAll(filepath.Join(h.Root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	h.cgroup = "kedge-e2e-" + n.ID + "-" + name
	return h
}

// Subnet is the bridge's network, in CIDR notation.
func (h *Host) Subnet() string { return h.net.prefix + "0/24" }

// Gateway is the host side of the host's bridge (its default route).
func (h *Host) Gateway() string { return h.net.Gateway() }

// Start runs argv inside the host: its network namespace and the mount,
// UTS and cgroup namespaces of the host's init process (see ensureInit), so
// that every process of a host, like on a real machine, sees the same
// mounts (network namespaces of pods, container root filesystems) whether
// it started before or after another one. The process gets its own
// $NOTIFY_SOCKET, as under systemd (see Proc.Ready).
func (h *Host) Start(t testing.TB, argv ...string) *Proc {
	t.Helper()
	pid := h.ensureInit(t)
	notify := testenv.ListenNotify(t)
	p := h.spawn(t, []string{"NOTIFY_SOCKET=" + notify.Path},
		"exec nsenter -t "+strconv.Itoa(pid)+` -m -u -n -C -- "$@"`, append([]string{"kedge-host"}, argv...)...)
	p.notify = notify
	return p
}

// InitPID is the pid of the host's init process (its /proc/PID/mountinfo
// shows the host's mounts).
func (h *Host) InitPID(t testing.TB) int {
	t.Helper()
	return h.ensureInit(t)
}

// Exec runs argv inside the host like Start, with env as its whole
// environment, waits up to timeout for it to exit and returns what it
// printed on stdout and on stderr, and its exit error.
func (h *Host) Exec(t testing.TB, timeout time.Duration, env []string, argv ...string) (string, string, error) {
	t.Helper()
	pid := h.ensureInit(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	script := h.cgroupJoin(t) + "exec nsenter -t " + strconv.Itoa(pid) + ` -m -u -n -C -- "$@"`
	cmd := exec.CommandContext(ctx, "bash", append([]string{"-c", script, "kedge-host"}, argv...)...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s: not done within %s (%v)", strings.Join(argv, " "), timeout, err)
	}
	return stdout.String(), stderr.String(), err
}

// ensureInit starts the host's init process unless it runs: it enters the
// network namespace and unshares mount, UTS and cgroup namespaces, binds
// the host's directories, mounts the cgroup hierarchies again (showing the
// host's cgroup as the root) and sleeps. A Reboot kills it; the next Start
// makes a new one, with fresh mounts.
func (h *Host) ensureInit(t testing.TB) int {
	t.Helper()
	h.mu.Lock()
	init := h.init
	h.mu.Unlock()
	if init != nil {
		if _, done := init.Exited(); !done {
			return init.Cmd.Process.Pid
		}
	}
	marker := filepath.Join(h.Root, ".init-ready")
	os.Remove(marker)
	var binds []string
	for _, d := range h.dirs {
		binds = append(binds, fmt.Sprintf("mkdir -p %q && mount --bind %q %q", d, filepath.Join(h.Root, d), d))
	}
	inner := strings.Join([]string{
		"set -e",
		fmt.Sprintf("hostname %q", h.Name),
		"mount --make-rprivate /",
		strings.Join(binds, "\n"),
		"mount -t tmpfs -o mode=755 cgroup-root /sys/fs/cgroup",
		remountCgroups(),
		fmt.Sprintf("touch %q", marker),
		"exec sleep infinity",
	}, "\n")
	init = h.spawn(t, nil, `exec ip netns exec "$0" unshare --mount --cgroup --uts --propagation private bash -c "$1"`, h.NS, inner)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(marker); err == nil {
			break
		}
		if err, done := init.Exited(); done || time.Now().After(deadline) {
			t.Fatalf("host %s: init did not start (%v):\n%s", h.Name, err, init.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.mu.Lock()
	h.init = init
	h.mu.Unlock()
	return init.Cmd.Process.Pid
}

// spawn runs `bash -c script args...` with env added to the test's
// environment after joining the host's cgroups (the cgroup namespace
// entered later is rooted there).
func (h *Host) spawn(t testing.TB, env []string, script string, args ...string) *Proc {
	t.Helper()
	outer := h.cgroupJoin(t) + script
	cmd := exec.Command("bash", append([]string{"-c", outer}, args...)...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	p := &Proc{Cmd: cmd, out: &testenv.Output{}, exited: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- cmd.Wait() }()
	h.mu.Lock()
	h.procs = append(h.procs, p)
	h.mu.Unlock()
	return p
}

// cleanup kills the host's processes and everything left in its cgroups,
// removes its cgroups, mounts and network namespace.
func (h *Host) cleanup(t testing.TB) {
	h.mu.Lock()
	procs := h.procs
	h.mu.Unlock()
	for _, p := range procs {
		if _, done := p.Exited(); !done {
			_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
			<-p.exited
		}
	}
	h.killAll()
	h.mu.Lock()
	dirs := h.cgroups
	h.mu.Unlock()
	for _, d := range dirs {
		testenv.RemoveCgroupTree(t, d)
	}
	runQuiet("ip", "netns", "del", h.NS)
	// Mounts made inside the host's mount namespace die with it; overlay
	// mounts containerd made there too. Nothing is mounted in ours.
}

// Reboot is a power cut and boot of the host, for processes already
// stopped or not: every process in its cgroups is killed (containers and
// shims too), its /run is emptied (a tmpfs on a real machine), and the
// network devices, routes and nftables rules made at run time (bridges,
// vxlan, pod veths) are removed. Disks (/var/lib/..., /etc/...) stay.
func (h *Host) Reboot(t testing.TB) {
	t.Helper()
	h.killAll()
	entries, _ := os.ReadDir(filepath.Join(h.Root, "run"))
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(h.Root, "run", e.Name())); err != nil {
			t.Fatalf("reboot %s: empty /run: %v", h.Name, err)
		}
	}
	out, err := exec.Command("ip", "-n", h.NS, "-o", "link", "show").Output()
	if err != nil {
		t.Fatalf("reboot %s: %v", h.Name, err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		if name != "lo" && name != "eth0" {
			runQuiet("ip", "-n", h.NS, "link", "del", name)
		}
	}
	// Every nftables table made at run time goes, except a cut link's.
	tables, err := exec.Command("ip", "netns", "exec", h.NS, "nft", "list", "tables").Output()
	if err != nil {
		t.Fatalf("reboot %s: %v", h.Name, err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(tables)), "\n") {
		f := strings.Fields(line) // table FAMILY NAME
		if len(f) == 3 && f[2] != CutTable {
			run(t, "ip", "netns", "exec", h.NS, "nft", "delete", "table", f[1], f[2])
		}
	}
}

// CutTable is the nftables table tests use to cut a host's link; a Reboot
// keeps it.
const CutTable = "e2e_cut"

// killAll kills the host's processes and everything left in its cgroups.
func (h *Host) killAll() {
	h.mu.Lock()
	dirs := h.cgroups
	h.mu.Unlock()
	// Containers and shims outlive the agent: kill what is left in the cgroups.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		left := 0
		for _, d := range dirs {
			filepath.Walk(d, func(p string, info os.FileInfo, err error) error {
				if err != nil || info.IsDir() || filepath.Base(p) != "cgroup.procs" {
					return nil
				}
				b, _ := os.ReadFile(p)
				for _, pid := range strings.Fields(string(b)) {
					left++
					var n int
					fmt.Sscan(pid, &n)
					_ = syscall.Kill(n, syscall.SIGKILL)
				}
				return nil
			})
		}
		if left == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
}

package checkconfig

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// fixture copies testdata/name into a temp dir (gzipping each
// config.gz.txt into config.gz) and returns a System on it whose
// commands, ports and file systems are all fine.
func fixture(t *testing.T, name string) System {
	t.Helper()
	root := t.TempDir()
	if err := os.CopyFS(root, os.DirFS(filepath.Join("testdata", name))); err != nil {
		t.Fatal(err)
	}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.Name() != "config.gz.txt" {
			return err
		}
		plain, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(plain)
		zw.Close()
		if err := os.WriteFile(filepath.Join(filepath.Dir(path), "config.gz"), buf.Bytes(), 0o644); err != nil {
			return err
		}
		return os.Remove(path)
	})
	if err != nil {
		t.Fatal(err)
	}
	return System{
		ProcRoot: filepath.Join(root, "proc"), SysRoot: filepath.Join(root, "sys"),
		BootRoot: filepath.Join(root, "boot"), LibModulesRoot: filepath.Join(root, "lib", "modules"),
		DataDir: filepath.Join(root, "var", "lib", "kedge"), KubeletDir: filepath.Join(root, "var", "lib", "kubelet"),
		LookPath:            func(name string) (string, error) { return "/usr/sbin/" + name, nil },
		Bind:                func(string, string) error { return nil },
		Statfs:              func(string) (FS, error) { return FS{Type: "ext4", Free: 40 << 30, Size: 64 << 30}, nil },
		CanLowerOOMScoreAdj: func() bool { return true },
	}
}

func TestFixtures(t *testing.T) {
	type want struct {
		group, name string
		status      Status
		detail      string // substring of Detail
	}
	cases := []struct {
		fixture string
		wants   []want
		// missing is the exact number of MISSING results.
		missing int
	}{
		{"good-v2", []want{
			{GroupKernel, "kernel version", OK, "6.1.0-good"},
			{GroupKernel, "overlay", OK, "present"},
			{GroupKernel, "br_netfilter", OK, "built in"},
			{GroupKernel, "nft expressions", OK, "built in"},
			{GroupKernel, "seccomp", OK, "present"},
			{GroupKernel, "user namespace", OK, "present"},
			{GroupCgroups, "cgroup version", OK, "v2"},
			{GroupCgroups, "memory", OK, "available"},
			{GroupNetwork, "default route", OK, "via eth0"},
			{GroupStorage, "swap", OK, "off"},
		}, 0},
		{"bad-v1", []want{
			{GroupKernel, "kernel version", Missing, "5.10.0-old"},
			{GroupKernel, "overlay", Missing, "overlay, which is not installed"},
			{GroupKernel, "bridge", OK, "built in"},
			{GroupKernel, "br_netfilter", Missing, "not loaded"},
			{GroupKernel, "veth", OK, "loaded on first use"},
			{GroupKernel, "vxlan", Missing, "CONFIG_VXLAN"},
			{GroupKernel, "nft expressions", Missing, "CONFIG_NFT_NUMGEN"},
			{GroupKernel, "iptables NAT", Warn, "CONFIG_IP_NF_NAT"},
			{GroupKernel, "seccomp", Warn, "CONFIG_SECCOMP_FILTER"},
			{GroupKernel, "namespaces", OK, ""},
			{GroupKernel, "user namespace", Warn, "absent"},
			{GroupCgroups, "cgroup version", OK, "hybrid"},
			{GroupCgroups, "cpu", OK, "mounted"},
			{GroupCgroups, "cpuacct", OK, "mounted"},
			{GroupCgroups, "memory", Missing, "disabled on the kernel command line"},
			{GroupCgroups, "blkio", Warn, "not mounted (optional)"},
			{GroupCgroups, "hugetlb", Warn, "not in this kernel"},
			{GroupNetwork, "default route", Missing, "none"},
			{GroupStorage, "swap", Warn, "0.1 GiB"},
		}, 7},
		{"boot-config", []want{
			{GroupKernel, "overlay", OK, "built in"},
			{GroupKernel, "vxlan", Missing, "not in the kernel config"},
		}, -1},
		{"probe-only", []want{
			{GroupKernel, "overlay", OK, "built in"},
			{GroupKernel, "vxlan", OK, "loaded on first use"},
			{GroupKernel, "br_netfilter", Missing, "no module br_netfilter"},
			{GroupKernel, "nft expressions", Missing, "nft_ct"},
			{GroupKernel, "seccomp", Warn, "could not tell"},
		}, -1},
		{"nothing", []want{
			{GroupKernel, "overlay", Warn, "could not tell"},
			{GroupKernel, "namespaces", Warn, "could not tell"},
			{GroupCgroups, "cgroup version", Missing, "no cgroup v1 hierarchy"},
			{GroupNetwork, "default route", Missing, "none"},
		}, -1},
	}
	for _, c := range cases {
		t.Run(c.fixture, func(t *testing.T) {
			rep := Check(fixture(t, c.fixture))
			for _, w := range c.wants {
				got, ok := rep.Find(w.group, w.name)
				if !ok {
					t.Errorf("no result %s/%s", w.group, w.name)
					continue
				}
				if got.Status != w.status || !strings.Contains(got.Detail, w.detail) {
					t.Errorf("%s/%s = %s %q, want %s with %q", w.group, w.name, got.Status, got.Detail, w.status, w.detail)
				}
				if got.Status != OK && got.Hint == "" {
					t.Errorf("%s/%s is %s without a hint", w.group, w.name, got.Status)
				}
			}
			if c.missing >= 0 && rep.Count(Missing) != c.missing {
				var buf bytes.Buffer
				WriteText(&buf, rep)
				t.Errorf("%d MISSING, want %d:\n%s", rep.Count(Missing), c.missing, buf.String())
			}
		})
	}
}

func TestConfigSource(t *testing.T) {
	if got := Check(fixture(t, "good-v2")).ConfigSource; !strings.HasSuffix(got, "/proc/config.gz") {
		t.Errorf("good-v2 read %q, want /proc/config.gz", got)
	}
	// /boot/config-<release> of the running release, not another one.
	if got := Check(fixture(t, "boot-config")).ConfigSource; !strings.HasSuffix(got, "/boot/config-5.15.0-boot") {
		t.Errorf("boot-config read %q, want /boot/config-5.15.0-boot", got)
	}
	if got := Check(fixture(t, "probe-only")).ConfigSource; got != "" {
		t.Errorf("probe-only read %q, want none", got)
	}
}

func TestBrNetfilterLoadedModule(t *testing.T) {
	// Config says m; the sysctl directory shows the module is loaded.
	sys := fixture(t, "bad-v1")
	dir := filepath.Join(sys.ProcRoot, "sys", "net", "bridge")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "bridge-nf-call-iptables"), []byte("1\n"), 0o644)
	if got, _ := Check(sys).Find(GroupKernel, "br_netfilter"); got.Status != OK {
		t.Errorf("br_netfilter = %+v, want ok", got)
	}
}

func TestDefaultRouteHints(t *testing.T) {
	// No dummy driver (bad-v1): the hint must not suggest one.
	if got, _ := Check(fixture(t, "bad-v1")).Find(GroupNetwork, "default route"); strings.Contains(got.Hint, "type dummy") {
		t.Errorf("hint suggests a dummy interface on a kernel without one: %s", got.Hint)
	}
	// An IPv6-only default route counts; the kernel's unreachable default on lo does not.
	sys := fixture(t, "nothing")
	os.MkdirAll(filepath.Join(sys.ProcRoot, "net"), 0o755)
	zero := strings.Repeat("0", 32)
	unreachable := zero + " 00 " + zero + " 00 " + zero + " ffffffff 00000001 00000000 00200200       lo\n"
	os.WriteFile(filepath.Join(sys.ProcRoot, "net", "ipv6_route"), []byte(unreachable), 0o644)
	if got, _ := Check(sys).Find(GroupNetwork, "default route"); got.Status != Missing || !strings.Contains(got.Hint, "ip link add dummy0 type dummy") {
		t.Errorf("unreachable route on lo: %+v, want MISSING with the dummy hint", got)
	}
	usable := zero + " 00 " + zero + " 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003     eth0\n"
	os.WriteFile(filepath.Join(sys.ProcRoot, "net", "ipv6_route"), []byte(unreachable+usable), 0o644)
	if got, _ := Check(sys).Find(GroupNetwork, "default route"); got.Status != OK || got.Detail != "via eth0" {
		t.Errorf("IPv6 default: %+v, want ok via eth0", got)
	}
}

func TestPorts(t *testing.T) {
	sys := fixture(t, "good-v2")
	inUse := map[string]bool{"tcp 0.0.0.0:6443": true, "tcp 0.0.0.0:10250": true, "udp 0.0.0.0:8472": true, "tcp 0.0.0.0:2380": true}
	sys.Bind = func(network, addr string) error {
		if inUse[network+" "+addr] {
			return &os.SyscallError{Syscall: "bind", Err: syscall.EADDRINUSE}
		}
		return nil
	}
	// 6443 (0x192B) is held by nginx, 10250 (0x280A) by kedge; 8472/udp
	// by the kernel (no flannel.1 here), 2380 by something unknown.
	tcp := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
		"   0: 00000000:192B 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0 100 0 0 10 0\n" +
		"   1: 00000000:280A 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4343 1 0 100 0 0 10 0\n"
	udp := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n" +
		"  10: 00000000:2118 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 0 2 0 0\n"
	os.WriteFile(filepath.Join(sys.ProcRoot, "net", "tcp"), []byte(tcp), 0o644)
	os.WriteFile(filepath.Join(sys.ProcRoot, "net", "udp"), []byte(udp), 0o644)
	for pid, p := range map[string]struct{ comm, inode string }{"123": {"nginx", "4242"}, "456": {"kedge", "4343"}} {
		fd := filepath.Join(sys.ProcRoot, pid, "fd")
		os.MkdirAll(fd, 0o755)
		os.WriteFile(filepath.Join(sys.ProcRoot, pid, "comm"), []byte(p.comm+"\n"), 0o644)
		os.Symlink("socket:["+p.inode+"]", filepath.Join(fd, "3"))
		os.Symlink("/dev/null", filepath.Join(fd, "0"))
	}
	rep := Check(sys)
	for _, w := range []struct {
		name   string
		status Status
		detail string
	}{
		{"port 6443/tcp", Missing, "in use by nginx (pid 123)"},
		{"port 10250/tcp", OK, "in use by kedge (pid 456), running already"},
		{"port 8472/udp", Missing, "the kernel"},
		{"port 2380/tcp", Warn, "another process"},
		{"port 6445/tcp", OK, "free"},
	} {
		got, _ := rep.Find(GroupNetwork, w.name)
		if got.Status != w.status || !strings.Contains(got.Detail, w.detail) {
			t.Errorf("%s = %s %q, want %s with %q", w.name, got.Status, got.Detail, w.status, w.detail)
		}
	}
	// kedge's own flannel.1 holds 8472/udp.
	os.MkdirAll(filepath.Join(sys.SysRoot, "class", "net", "flannel.1"), 0o755)
	if got, _ := Check(sys).Find(GroupNetwork, "port 8472/udp"); got.Status != OK {
		t.Errorf("8472/udp with flannel.1 = %+v, want ok", got)
	}
}

func TestStorage(t *testing.T) {
	cases := []struct {
		fs     FS
		status Status
	}{
		{FS{Type: "ext4", Free: 40 << 30, Size: 64 << 30}, OK},
		{FS{Type: "ext4", Free: 1 << 30, Size: 8 << 30}, Warn},    // under 2 GiB
		{FS{Type: "xfs", Free: 20 << 30, Size: 1000 << 30}, Warn}, // under 5%
		{FS{Type: "overlayfs", Free: 40 << 30, Size: 64 << 30}, Missing},
		{FS{Type: "tmpfs", Free: 4 << 30, Size: 4 << 30}, Warn},
		{FS{Type: "vfat", Free: 40 << 30, Size: 64 << 30}, Missing},
		{FS{Type: "0x1234", Free: 40 << 30, Size: 64 << 30}, Warn},
	}
	for _, c := range cases {
		sys := fixture(t, "good-v2")
		var asked []string
		sys.Statfs = func(path string) (FS, error) { asked = append(asked, path); return c.fs, nil }
		got, _ := Check(sys).Find(GroupStorage, "data dir")
		if got.Status != c.status {
			t.Errorf("%+v: %s %q, want %s", c.fs, got.Status, got.Detail, c.status)
		}
		// The data dir does not exist yet: its nearest existing parent is asked.
		if len(asked) == 0 || asked[0] != filepath.Dir(filepath.Dir(filepath.Dir(sys.DataDir))) {
			t.Errorf("statfs asked %v for %s", asked, sys.DataDir)
		}
	}
}

func TestCommandsAndPrivileges(t *testing.T) {
	sys := fixture(t, "good-v2")
	sys.LookPath = func(string) (string, error) { return "", errors.New("not found") }
	sys.Euid = 1000
	sys.CanLowerOOMScoreAdj = func() bool { return false }
	rep := Check(sys)
	for _, w := range []struct {
		group, name string
		status      Status
	}{
		{GroupCommands, "nft", Missing},
		{GroupCommands, "iptables", Warn},
		{GroupPrivileges, "root", Missing},
		{GroupPrivileges, "oom_score_adj", Warn},
	} {
		if got, _ := rep.Find(w.group, w.name); got.Status != w.status {
			t.Errorf("%s/%s = %s, want %s", w.group, w.name, got.Status, w.status)
		}
	}
}

func TestOutput(t *testing.T) {
	rep := Check(fixture(t, "bad-v1"))
	var text bytes.Buffer
	if err := WriteText(&text, rep); err != nil {
		t.Fatal(err)
	}
	out := text.String()
	for _, s := range []string{"\nKernel\n", "\ncgroups\n", "\nCommands\n", "\nNetwork\n", "\nStorage\n", "\nPrivileges\n",
		"  MISSING  vxlan ", "-> needed for flannel's vxlan", "7 missing: kedge cannot run"} {
		if !strings.Contains(out, s) {
			t.Errorf("text output lacks %q:\n%s", s, out)
		}
	}
	var js bytes.Buffer
	if err := WriteJSON(&js, rep); err != nil {
		t.Fatal(err)
	}
	var got struct {
		OK      bool     `json:"ok"`
		Results []Result `json:"results"`
	}
	if err := json.Unmarshal(js.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.OK || len(got.Results) != len(rep.Results) {
		t.Errorf("json ok=%v with %d results, want false with %d", got.OK, len(got.Results), len(rep.Results))
	}
}

// TestThisMachine runs the checks on the machine the tests run on, which
// runs kedge: every required item but the ports (a kedge or a test may be
// listening) must be there.
func TestThisMachine(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, as kedge does")
	}
	rep := Check(Host(t.TempDir()))
	var buf bytes.Buffer
	WriteText(&buf, rep)
	t.Log("\n" + buf.String())
	for _, r := range rep.Results {
		if r.Status == Missing && !strings.HasPrefix(r.Name, "port ") {
			t.Errorf("this machine lacks %s/%s: %s", r.Group, r.Name, r.Detail)
		}
	}
}

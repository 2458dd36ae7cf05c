package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kedge/kedge/scripts/e2e/hosts"
	"github.com/kedge/kedge/server/integration/harness"
)

// installDirs are made private to the install tests' hosts besides
// hosts.HostDirs: what install.sh writes and its uninstall script removes.
var installDirs = []string{"/usr/local/bin", "/etc/systemd/system", "/etc/init.d", "/var/log"}

// pathEnv is systemd's PATH for services, used for everything run in the hosts.
const pathEnv = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// downloadSite packs $KEDGE_BIN as amd64 with scripts/dist-pack into
// good/, copies it to bad/ with a corrupted kedge-amd64.xz (install.sh in
// both), and serves them on the bridge's host side. It returns the base URL.
func downloadSite(t *testing.T, kedge string, n *hosts.Network) string {
	t.Helper()
	root := t.TempDir()
	good, bad := filepath.Join(root, "good"), filepath.Join(root, "bad")
	pack := exec.Command("../dist-pack", "amd64", kedge, good)
	pack.Env = append(os.Environ(), "XZ_LEVEL=-0")
	if out, err := pack.CombinedOutput(); err != nil {
		t.Fatalf("dist-pack: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(good, "install.sh"), mustRead(t, "../../install.sh"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(bad, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"install.sh", "kedge-amd64", "kedge-amd64.xz", "sha256sum-amd64.txt"} {
		if err := os.WriteFile(filepath.Join(bad, f), mustRead(t, filepath.Join(good, f)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.OpenFile(filepath.Join(bad, "kedge-amd64.xz"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("corrupted"), 4096); err != nil {
		t.Fatal(err)
	}
	f.Close()
	ln, err := net.Listen("tcp", n.Gateway()+":0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(root))}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// install runs `curl -sfL URL/install.sh | sh -` in h with env (and PATH)
// as the whole environment.
func install(t *testing.T, h *hosts.Host, site string, env ...string) (string, string, error) {
	t.Helper()
	env = append([]string{pathEnv}, env...)
	return h.Exec(t, 5*time.Minute, env, curlPipeSh(site)...)
}

// curlPipeSh is the command a user runs to install from site, run by bash
// with pipefail: a failed download is the command's error (curl's exit
// status), not an empty script that sh runs successfully.
func curlPipeSh(site string) []string {
	return []string{"bash", "-o", "pipefail", "-c", "curl -sfL " + site + "/good/install.sh | sh -"}
}

// mustInstall is install that fails the test on an error.
func mustInstall(t *testing.T, h *hosts.Host, site string, env ...string) string {
	t.Helper()
	stdout, stderr, err := install(t, h, site, env...)
	if err != nil {
		t.Fatalf("install on %s: %v\nstdout:\n%s\nstderr:\n%s", h.Name, err, stdout, stderr)
	}
	t.Logf("install on %s:\n%s%s", h.Name, stdout, stderr)
	return stdout + stderr
}

// unit is what the test needs from a systemd unit install.sh wrote.
type unit struct {
	execStart []string
	env       []string // KEY=value, from the EnvironmentFile
	envFile   string   // in the host
}

// readUnit checks the unit file (systemd-analyze verify, in the host) and
// its environment file (0600), and returns its command and environment.
func readUnit(t *testing.T, h *hosts.Host, name string) unit {
	t.Helper()
	path := filepath.Join(h.Root, "etc/systemd/system", name)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Fatal("systemd-analyze is missing: apt-get install -y systemd")
	}
	if _, stderr, err := h.Exec(t, time.Minute, []string{pathEnv}, "systemd-analyze", "verify", "/etc/systemd/system/"+name); err != nil || stderr != "" {
		t.Fatalf("systemd-analyze verify %s: %v\n%s", name, err, stderr)
	}
	var u unit
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "ExecStart="); ok {
			u.execStart = strings.Fields(v)
		}
		if v, ok := strings.CutPrefix(line, "EnvironmentFile="); ok {
			u.envFile = strings.TrimPrefix(v, "-")
		}
	}
	for _, want := range []string{"Type=notify", "KillMode=process", "Delegate=yes", "LimitNOFILE=1048576", "TasksMax=infinity",
		"Restart=always", "RestartSec=5s", "TimeoutStartSec=0", "ExecStartPre=-/sbin/modprobe overlay", "ExecStartPre=-/sbin/modprobe br_netfilter"} {
		if !slices.Contains(strings.Split(string(data), "\n"), want) {
			t.Errorf("%s lacks %s:\n%s", name, want, data)
		}
	}
	if len(u.execStart) == 0 || u.envFile != "/etc/systemd/system/"+name+".env" {
		t.Fatalf("%s: ExecStart %q, EnvironmentFile %q", name, u.execStart, u.envFile)
	}
	envPath := filepath.Join(h.Root, u.envFile)
	st, err := os.Stat(envPath)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", u.envFile, st.Mode().Perm())
	}
	f, err := os.Open(envPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok || len(v) < 2 || v[0] != '\'' || v[len(v)-1] != '\'' {
			t.Fatalf("%s: line %q is not KEY='value'", u.envFile, sc.Text())
		}
		u.env = append(u.env, k+"="+v[1:len(v)-1])
	}
	return u
}

// startUnit starts the unit's ExecStart in h with the unit's environment
// only, as systemd would.
func startUnit(t *testing.T, h *hosts.Host, u unit) *hosts.Proc {
	t.Helper()
	argv := append([]string{"env", "-i", pathEnv}, u.env...)
	return h.Start(t, append(argv, u.execStart...)...)
}

// fileState is a file's content hash, mode and mtime (links: their target).
type fileState struct {
	sum   [32]byte
	mode  os.FileMode
	mtime time.Time
}

// snapshot records every file under the host's dirs.
func snapshot(t *testing.T, h *hosts.Host, dirs ...string) map[string]fileState {
	t.Helper()
	out := map[string]fileState{}
	for _, d := range dirs {
		entries, err := os.ReadDir(filepath.Join(h.Root, d))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			p := filepath.Join(h.Root, d, e.Name())
			st, err := os.Lstat(p)
			if err != nil {
				t.Fatal(err)
			}
			var content []byte
			if st.Mode()&os.ModeSymlink != 0 {
				target, _ := os.Readlink(p)
				content = []byte(target)
			} else if content, err = os.ReadFile(p); err != nil {
				t.Fatal(err)
			}
			out[filepath.Join(d, e.Name())] = fileState{sha256.Sum256(content), st.Mode(), st.ModTime()}
		}
	}
	return out
}

// TestInstall installs a server and an agent joining it with install.sh
// from a download site on the test bridge, starts each unit's command as
// systemd would, re-runs the installer (nothing changes, nothing restarts;
// a new flag restarts) and uninstalls both: nothing of kedge is left.
func TestInstall(t *testing.T) {
	kedge := harness.Binary(t)
	n := hosts.NewNetwork(t)
	site := downloadSite(t, kedge, n)
	srvHost := n.AddHost(t, "server", installDirs...)
	agentHost := n.AddHost(t, "agent", installDirs...)
	skip := []string{"INSTALL_KEDGE_DOWNLOAD_URL=" + site + "/good", "INSTALL_KEDGE_SKIP_ENABLE=true", "INSTALL_KEDGE_SKIP_START=true"}

	// The server.
	mustInstall(t, srvHost, site, skip...)
	for _, f := range []string{"kedge", "kedge-killall.sh", "kedge-uninstall.sh"} {
		if st, err := os.Stat(filepath.Join(srvHost.Root, "usr/local/bin", f)); err != nil || st.Mode().Perm() != 0o755 {
			t.Fatalf("server host: /usr/local/bin/%s: %v", f, err)
		}
	}
	for _, l := range []string{"kubectl", "crictl", "ctr"} {
		if target, err := os.Readlink(filepath.Join(srvHost.Root, "usr/local/bin", l)); err != nil || target != "kedge" {
			t.Fatalf("server host: /usr/local/bin/%s -> %q (%v), want kedge", l, target, err)
		}
	}
	srvUnit := readUnit(t, srvHost, "kedge.service")
	if want := []string{"/usr/local/bin/kedge", "server"}; !slices.Equal(srvUnit.execStart, want) || len(srvUnit.env) != 0 {
		t.Fatalf("server unit: ExecStart %q, environment %q; want %q and none", srvUnit.execStart, srvUnit.env, want)
	}
	stageTestImage(t, srvHost)
	srv := startUnit(t, srvHost, srvUnit)
	waitForServer(t, srvHost, srv)
	admin := adminClient(t, srvHost)
	waitNodeReady(t, admin, "server", []*hosts.Proc{srv})
	// kubectl is kedge, by its name, with the server's kubeconfig.
	if out, stderr, err := srvHost.Exec(t, time.Minute, []string{pathEnv}, "kubectl", "get", "node", "server", "-o", "name"); err != nil || strings.TrimSpace(out) != "node/server" {
		t.Fatalf("kubectl in the server host: %q %v\n%s", out, err, stderr)
	}
	tok, err := os.ReadFile(filepath.Join(srvHost.Root, "var/lib/kedge/server/token"))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(tok))

	// The agent joins with KEDGE_URL and KEDGE_TOKEN.
	join := []string{"KEDGE_TOKEN=" + token, "KEDGE_URL=https://" + srvHost.IP + ":6443"} // as sorted in the env file
	out := mustInstall(t, agentHost, site, append(skip, join...)...)
	if strings.Contains(out, token) {
		t.Fatalf("the installer printed the token:\n%s", out)
	}
	agentUnit := readUnit(t, agentHost, "kedge-agent.service")
	if want := []string{"/usr/local/bin/kedge", "agent"}; !slices.Equal(agentUnit.execStart, want) || !slices.Equal(agentUnit.env, join) {
		t.Fatalf("agent unit: ExecStart %q, environment %d variables; want %q and KEDGE_TOKEN, KEDGE_URL", agentUnit.execStart, len(agentUnit.env), want)
	}
	if _, err := os.Stat(filepath.Join(agentHost.Root, "usr/local/bin/kedge-agent-uninstall.sh")); err != nil {
		t.Fatal(err)
	}
	stageTestImage(t, agentHost)
	agent := startUnit(t, agentHost, agentUnit)
	waitNodeReady(t, admin, "agent", []*hosts.Proc{srv, agent})

	// Again with the same settings: nothing changes. A recording systemctl
	// stands in for systemd (which cannot run as PID 1 here), found through
	// /run/systemd/system in the host's private /run and PATH.
	dirs := []string{"usr/local/bin", "etc/systemd/system"}
	before := snapshot(t, agentHost, dirs...)
	stub := t.TempDir()
	calls := filepath.Join(stub, "calls")
	if err := os.WriteFile(filepath.Join(stub, "systemctl"), []byte("#!/bin/sh\necho \"$*\" >>"+calls+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	sdDir := filepath.Join(agentHost.Root, "run/systemd/system")
	if err := os.MkdirAll(sdDir, 0o755); err != nil {
		t.Fatal(err)
	}
	withStub := func(env ...string) []string {
		stubbed := []string{"PATH=" + stub + ":" + strings.TrimPrefix(pathEnv, "PATH="), "INSTALL_KEDGE_DOWNLOAD_URL=" + site + "/good"}
		return append(append(stubbed, join...), env...)
	}
	rerun := func(env ...string) []string {
		os.Remove(calls)
		stdout, stderr, err := agentHost.Exec(t, 5*time.Minute, withStub(env...), curlPipeSh(site)...)
		if err != nil {
			t.Fatalf("re-run: %v\n%s%s", err, stdout, stderr)
		}
		t.Logf("re-run:\n%s%s", stdout, stderr)
		b, _ := os.ReadFile(calls)
		return strings.Split(strings.TrimSpace(string(b)), "\n")
	}
	got := rerun()
	if after := snapshot(t, agentHost, dirs...); !mapsEqual(before, after) {
		t.Fatalf("an unchanged re-run changed files:\nbefore %v\nafter  %v", before, after)
	}
	if slices.ContainsFunc(got, func(c string) bool {
		return strings.HasPrefix(c, "restart") || strings.HasPrefix(c, "start") || strings.HasPrefix(c, "daemon-reload")
	}) {
		t.Fatalf("an unchanged re-run called systemctl %q", got)
	}
	// A new flag rewrites the unit: daemon-reload and restart.
	got = rerun("INSTALL_KEDGE_EXEC=agent --node-label installed-by=install.sh")
	if !slices.Contains(got, "daemon-reload") || !slices.Contains(got, "restart kedge-agent") {
		t.Fatalf("a changed unit: systemctl calls %q, want daemon-reload and restart kedge-agent", got)
	}
	if err := os.RemoveAll(filepath.Join(agentHost.Root, "run/systemd")); err != nil {
		t.Fatal(err)
	}

	// A pod on each node: containers, shims, their mounts and network namespaces.
	for _, node := range []string{"server", "agent"} {
		_, err := admin.CoreV1().Pods("default").Create(t.Context(), &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "web-" + node},
			Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{
				Name: "web", Image: "kedge.local/testimage:1", ImagePullPolicy: corev1.PullNever,
			}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		waitPodRunning(t, admin, "web-"+node, []*hosts.Proc{srv, agent})
	}

	// Uninstall, the agent first.
	for _, u := range []struct {
		h      *hosts.Host
		script string
		proc   *hosts.Proc
	}{{agentHost, "kedge-agent-uninstall.sh", agent}, {srvHost, "kedge-uninstall.sh", srv}} {
		// kedge's state is there to be removed.
		before := strings.Join(leftovers(t, u.h), "\n")
		for _, want := range []string{"process /usr/local/bin/kedge", "containerd-shim-runc-v2", "mount /var/lib/kubelet/pods/", "mount /run/netns/cni-",
			"mount /run/kedge/containerd/", "device flannel.1", "device kedge0", "nftables table ip kube-proxy", "nftables table ip flannel-ipv4", "file /var/lib/kedge/"} {
			if !strings.Contains(before, want) {
				t.Fatalf("%s before uninstall: no %q among:\n%s", u.h.Name, want, before)
			}
		}
		t.Logf("%s before uninstall:\n%s", u.h.Name, before)
		stdout, stderr, err := u.h.Exec(t, 3*time.Minute, []string{pathEnv}, "/usr/local/bin/"+u.script)
		if err != nil {
			t.Fatalf("%s on %s: %v\n%s%s", u.script, u.h.Name, err, stdout, stderr)
		}
		t.Logf("%s on %s:\n%s%s", u.script, u.h.Name, stdout, stderr)
		waitFor(t, 30*time.Second, u.h.Name+"'s kedge to exit", nil, func() bool {
			_, done := u.proc.Exited()
			return done
		})
		if left := leftovers(t, u.h); len(left) > 0 {
			t.Errorf("%s after %s:\n%s", u.h.Name, u.script, strings.Join(left, "\n"))
		}
	}
}

func mapsEqual(a, b map[string]fileState) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w.sum != v.sum || w.mode != v.mode || !w.mtime.Equal(v.mtime) {
			return false
		}
	}
	return true
}

// leftovers lists what kedge has in h: processes (besides the host's
// init), mounts below its directories, network devices, nftables tables and
// iptables chains, and files.
func leftovers(t *testing.T, h *hosts.Host) []string {
	t.Helper()
	var left []string
	for _, pid := range h.Pids() {
		cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		left = append(left, "process "+string(bytes.ReplaceAll(bytes.TrimRight(cmdline, "\x00"), []byte{0}, []byte{' '})))
	}
	mountinfo, err := os.ReadFile("/proc/" + strconv.Itoa(h.InitPID(t)) + "/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mountinfo), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		for _, dir := range []string{"/run/kedge", "/var/lib/kedge/", "/var/lib/kubelet/", "/run/netns/cni-"} {
			if strings.HasPrefix(f[4], dir) {
				left = append(left, "mount "+f[4])
			}
		}
	}
	links, err := exec.Command("ip", "-n", h.NS, "-o", "link", "show").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(links)), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		// The kernel's fallback tunnel devices appear in every namespace.
		if !slices.Contains([]string{"lo", "eth0", "tunl0", "gre0", "gretap0", "erspan0", "sit0", "ip6tnl0", "ip6gre0", "ip_vti0", "ip6_vti0"}, name) {
			left = append(left, "device "+name)
		}
	}
	ruleset, err := exec.Command("ip", "netns", "exec", h.NS, "nft", "list", "ruleset").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(ruleset), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "table ") && (strings.Contains(line, "kube-proxy") || strings.Contains(line, "flannel")) ||
			strings.HasPrefix(line, "chain ") && (strings.Contains(line, "KUBE-") || strings.Contains(line, "CNI-") || strings.Contains(line, "FLANNEL")) {
			left = append(left, "nftables "+strings.TrimSuffix(line, " {"))
		}
	}
	for _, d := range []string{"usr/local/bin", "etc/systemd/system", "etc/kedge", "var/lib/kedge", "var/lib/kubelet", "var/log/pods"} {
		entries, err := os.ReadDir(filepath.Join(h.Root, d))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			left = append(left, "file /"+d+"/"+e.Name())
		}
	}
	for _, p := range []string{"run/kedge", "var/log/containers", "var/lib/cni/networks/kedge"} {
		if _, err := os.Lstat(filepath.Join(h.Root, p)); err == nil {
			left = append(left, "file /"+p)
		}
	}
	return left
}

// TestInstallRefusals: wrong input gets one line on stderr and a non-zero
// exit, and nothing is written.
func TestInstallRefusals(t *testing.T) {
	kedge := harness.Binary(t)
	n := hosts.NewNetwork(t)
	site := downloadSite(t, kedge, n)
	h := n.AddHost(t, "refused", installDirs...)
	fake := t.TempDir()
	if err := os.WriteFile(filepath.Join(fake, "uname"), []byte("#!/bin/sh\necho mips\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	skip := []string{"INSTALL_KEDGE_SKIP_ENABLE=true", "INSTALL_KEDGE_SKIP_START=true"}
	closed, err := net.Listen("tcp", n.Gateway()+":0")
	if err != nil {
		t.Fatal(err)
	}
	unreachable := "http://" + closed.Addr().String()
	closed.Close()
	for _, c := range []struct {
		name string
		env  []string
		want string
	}{
		{"checksum mismatch", []string{"INSTALL_KEDGE_DOWNLOAD_URL=" + site + "/bad"}, "checksum mismatch for kedge-amd64.xz"},
		{"unreachable URL", []string{"INSTALL_KEDGE_DOWNLOAD_URL=" + unreachable}, "cannot download " + unreachable + "/sha256sum-amd64.txt"},
		{"URL without a token", []string{"INSTALL_KEDGE_DOWNLOAD_URL=" + site + "/good", "KEDGE_URL=https://10.0.0.1:6443"}, "KEDGE_TOKEN or KEDGE_TOKEN_FILE is needed"},
		{"URL not https", []string{"INSTALL_KEDGE_DOWNLOAD_URL=" + site + "/good", "KEDGE_URL=http://10.0.0.1:6443", "KEDGE_TOKEN=secret"}, "KEDGE_URL must be an https:// URL"},
		{"unknown architecture", []string{"INSTALL_KEDGE_DOWNLOAD_URL=" + site + "/good", "PATH=" + fake + ":" + strings.TrimPrefix(pathEnv, "PATH=")}, "unsupported architecture mips"},
	} {
		stdout, stderr, err := install(t, h, site, append(skip, c.env...)...)
		var exit *exec.ExitError
		if !asExit(err, &exit) || exit.ExitCode() == 0 {
			t.Errorf("%s: exit %v, want a non-zero exit", c.name, err)
		}
		if lines := strings.Split(strings.TrimSpace(stderr), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "[ERROR] ") || !strings.Contains(lines[0], c.want) {
			t.Errorf("%s: stderr %q, want one [ERROR] line with %q", c.name, stderr, c.want)
		}
		if stdout != "" || strings.Contains(stderr, "secret") {
			t.Errorf("%s: stdout %q, stderr %q", c.name, stdout, stderr)
		}
		for _, d := range []string{"usr/local/bin", "etc/systemd/system", "etc/kedge"} {
			if entries, _ := os.ReadDir(filepath.Join(h.Root, d)); len(entries) > 0 {
				t.Errorf("%s: /%s holds %v", c.name, d, entries)
			}
		}
	}
}

// asExit reports whether err is a non-zero exit of the command (not a
// failure to run it or a timeout).
func asExit(err error, exit **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	if ok && e.Sys().(syscall.WaitStatus).Exited() {
		*exit = e
		return true
	}
	return false
}

// TestInstallAirGapped installs a binary given with INSTALL_KEDGE_BINARY
// (no download), leaves a kubectl that is not kedge's alone (and replaces
// it with INSTALL_KEDGE_SYMLINK=force), and uninstalls.
func TestInstallAirGapped(t *testing.T) {
	kedge := harness.Binary(t)
	script, err := filepath.Abs("../../install.sh")
	if err != nil {
		t.Fatal(err)
	}
	n := hosts.NewNetwork(t)
	h := n.AddHost(t, "airgapped", installDirs...)
	foreign := filepath.Join(h.Root, "usr/local/bin/kubectl")
	if err := os.WriteFile(foreign, []byte("#!/bin/sh\necho another kubectl\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{pathEnv, "INSTALL_KEDGE_SKIP_DOWNLOAD=true", "INSTALL_KEDGE_BINARY=" + kedge,
		"INSTALL_KEDGE_SKIP_ENABLE=true", "INSTALL_KEDGE_SKIP_START=true", "INSTALL_KEDGE_EXEC=agent --server https://10.0.0.1:6443", "KEDGE_TOKEN_FILE=/etc/kedge/token"}
	run := func(env ...string) string {
		stdout, stderr, err := h.Exec(t, 2*time.Minute, env, "sh", script)
		if err != nil {
			t.Fatalf("install: %v\n%s%s", err, stdout, stderr)
		}
		t.Logf("install:\n%s%s", stdout, stderr)
		return stdout + stderr
	}
	run(env...)
	want, _ := os.ReadFile(kedge)
	if got, err := os.ReadFile(filepath.Join(h.Root, "usr/local/bin/kedge")); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("/usr/local/bin/kedge is not the given binary (%v)", err)
	}
	if b, _ := os.ReadFile(foreign); !strings.Contains(string(b), "another kubectl") {
		t.Fatalf("the installer replaced a kubectl that is not kedge's")
	}
	u := readUnit(t, h, "kedge-agent.service")
	if wantExec := []string{"/usr/local/bin/kedge", "agent", "--server", "https://10.0.0.1:6443"}; !slices.Equal(u.execStart, wantExec) ||
		!slices.Equal(u.env, []string{"KEDGE_TOKEN_FILE=/etc/kedge/token"}) {
		t.Fatalf("unit: ExecStart %q, environment %q", u.execStart, u.env)
	}
	before := snapshot(t, h, "usr/local/bin", "etc/systemd/system")
	run(env...)
	if after := snapshot(t, h, "usr/local/bin", "etc/systemd/system"); !mapsEqual(before, after) {
		t.Fatalf("an unchanged re-run changed files:\nbefore %v\nafter  %v", before, after)
	}
	run(append(env, "INSTALL_KEDGE_SYMLINK=force")...)
	if target, err := os.Readlink(foreign); err != nil || target != "kedge" {
		t.Fatalf("INSTALL_KEDGE_SYMLINK=force: kubectl -> %q (%v)", target, err)
	}
	if stdout, stderr, err := h.Exec(t, 2*time.Minute, []string{pathEnv}, "/usr/local/bin/kedge-agent-uninstall.sh"); err != nil {
		t.Fatalf("uninstall: %v\n%s%s", err, stdout, stderr)
	}
	if left := leftovers(t, h); len(left) > 0 {
		t.Errorf("after uninstall:\n%s", strings.Join(left, "\n"))
	}
}

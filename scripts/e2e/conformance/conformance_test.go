package conformance

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kedge/kedge/scripts/e2e/hosts"
	"github.com/kedge/kedge/scripts/testenv"
)

// TestConformance brings up a server (which is a node too) and an agent
// on two e2e test hosts with the images built by scripts/conformance in
// both nodes' images directories, then runs e2e.test's [Conformance]
// specs with the ginkgo CLI: the non-serial ones in parallel, then the
// serial ones, and prints the summary. It runs only from
// scripts/conformance (which sets CONFORMANCE_CACHE); hosts, processes and
// cgroups are removed at the end, also when it fails or is interrupted.
func TestConformance(t *testing.T) {
	cache := os.Getenv("CONFORMANCE_CACHE")
	if cache == "" {
		t.Skip("run by scripts/conformance (make conformance)")
	}
	kedge := os.Getenv("KEDGE_BIN")
	// An interrupt (Ctrl-C on make conformance) stops the run through
	// t.Fatal, so that the hosts are cleaned up.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	start := time.Now()
	if s, err := strconv.ParseInt(os.Getenv("CONFORMANCE_START"), 10, 64); err == nil {
		start = time.Unix(s, 0)
	}
	bin := filepath.Join(cache, "bin")
	// Each run keeps its logs and reports in its own directory.
	runDir := filepath.Join(cache, "runs", start.UTC().Format("20060102-150405"))
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		t.Fatal(err)
	}

	net := hosts.NewNetwork(t)
	srvHost := net.AddHost(t, "server")
	agentHost := net.AddHost(t, "agent")
	for _, h := range []*hosts.Host{srvHost, agentHost} {
		stageImages(t, filepath.Join(cache, "images"), h)
	}
	// The preloaded images are pinned (kedge pins what it imports), so the
	// kubelet's image GC keeps them when the shared disk fills up.
	srv := srvHost.Start(t, kedge, "server")
	t.Cleanup(func() { saveLog(t, runDir, "server.log", srv) })
	waitFor(t, sig, 180*time.Second, "the server (with its node) to be ready", []*hosts.Proc{srv}, srv.Ready)
	tok, err := os.ReadFile(filepath.Join(srvHost.Root, "var/lib/kedge/server/token"))
	if err != nil {
		t.Fatal(err)
	}
	agent := agentHost.Start(t, kedge, "agent", "--server", "https://"+srvHost.IP+":6443", "--token", strings.TrimSpace(string(tok)))
	t.Cleanup(func() { saveLog(t, runDir, "agent.log", agent) })
	procs := []*hosts.Proc{srv, agent}
	waitFor(t, sig, 180*time.Second, "the agent to be ready", procs, agent.Ready)

	kubeconfig := writeKubeconfig(t, srvHost, runDir)
	admin := client(t, kubeconfig)
	for _, n := range []string{"server", "agent"} {
		waitFor(t, sig, 180*time.Second, "node "+n+" Ready", procs, func() bool {
			node, err := admin.CoreV1().Nodes().Get(t.Context(), n, metav1.GetOptions{})
			return err == nil && ready(node)
		})
	}
	t.Logf("cluster ready after %s (kubeconfig %s)", time.Since(start).Round(time.Second), kubeconfig)

	var res Result
	focus := os.Getenv("CONFORMANCE_FOCUS")
	var skips []Skip
	if p := os.Getenv("CONFORMANCE_SKIPS"); p != "" {
		if skips, err = ReadSkips(p); err != nil {
			t.Fatal(err)
		}
	}
	skip := SkipPattern(skips)
	if extra := os.Getenv("CONFORMANCE_SKIP"); extra != "" {
		skip = strings.TrimPrefix(skip+"|"+extra, "|")
	}
	phases := []struct{ name, labels string }{
		{"parallel", "Conformance && !Serial && !Disruptive"},
		{"serial", "Conformance && (Serial || Disruptive)"},
	}
	var stopped error
	for _, ph := range phases {
		report := filepath.Join(runDir, ph.name+".json")
		stopped = runGinkgo(t, sig, bin, kubeconfig, runDir, ph.name, ph.labels, focus, skip, report, procs)
		if err := res.ReadReport(report); err != nil {
			t.Fatalf("%s run: %v", ph.name, err)
		}
		if stopped != nil {
			break // what ran until the interrupt is still summarised
		}
	}
	var focusRE *regexp.Regexp
	if focus != "" {
		focusRE = regexp.MustCompile(focus)
	}
	res.ApplySkips(skips, focusRE)
	res.Print(os.Stdout, time.Since(start))
	fmt.Printf("logs: %s\n", runDir)
	if stopped != nil {
		t.Fatal(stopped)
	}
	if len(res.Failed) > 0 {
		t.Fail()
	}
}

// stageImages copies every image tarball into the host's agent images
// directory, imported when its containerd starts.
func stageImages(t *testing.T, from string, h *hosts.Host) {
	t.Helper()
	dir := filepath.Join(h.Root, "var/lib/kedge/agent/images")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(from)
	if err != nil || len(entries) == 0 {
		t.Fatalf("no images in %s (%v)", from, err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// runGinkgo runs e2e.test under the ginkgo CLI for one phase; a phase with
// no spec to run is not an error. An interrupt stops ginkgo (which still
// writes its report) and is returned, so that the caller summarises what
// ran before failing. Its output goes to <phase>.log and,
// trimmed to progress, to the test's stdout.
func runGinkgo(t *testing.T, interrupted <-chan os.Signal, bin, kubeconfig, runDir, phase, labels, focus, skip, report string, procs []*hosts.Proc) error {
	t.Helper()
	nodes := os.Getenv("CONFORMANCE_NODES")
	if nodes == "" {
		nodes = "4"
	}
	args := []string{"run", "--label-filter=" + labels, "--timeout=24h", "--json-report=" + report,
		"--no-color", "--silence-skips"}
	if phase == "parallel" {
		args = append(args, "--procs="+nodes)
	}
	if focus != "" {
		args = append(args, "--focus="+focus)
	}
	if skip != "" {
		args = append(args, "--skip="+skip)
	}
	args = append(args, filepath.Join(bin, "e2e.test"), "--",
		"--kubeconfig="+kubeconfig, "--kubectl-path="+filepath.Join(bin, "kubectl"),
		"--provider=skeleton", "--report-dir="+filepath.Join(runDir, phase), "--dump-logs-on-failure=false")
	logf, err := os.Create(filepath.Join(runDir, phase+".log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "ginkgo"), args...)
	cmd.Dir = runDir
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "PATH="+bin+":"+os.Getenv("PATH"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	t.Logf("%s run: ginkgo %s", phase, strings.Join(args, " "))
	phaseStart := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			t.Logf("%s run done in %s (%v); log %s", phase, time.Since(phaseStart).Round(time.Second), err, logf.Name())
			if _, serr := os.Stat(report); serr != nil {
				b, _ := os.ReadFile(logf.Name())
				t.Fatalf("%s run wrote no report (%v):\n%s", phase, err, tailOf(string(b), 4000))
			}
			return nil
		case s := <-interrupted:
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) // ginkgo writes its report
			select {
			case <-done:
			case <-time.After(2 * time.Minute):
				cancel()
				<-done
			}
			return fmt.Errorf("%s run: %v", phase, s)
		case <-tick.C:
			for _, p := range procs {
				if err, exited := p.Exited(); exited {
					cancel()
					<-done
					t.Fatalf("a kedge process exited during the %s run (%v):\n%s", phase, err, tailOf(p.Output(), 4000))
				}
			}
			t.Logf("%s run: %s", phase, time.Since(phaseStart).Round(time.Second))
		}
	}
}

// writeKubeconfig copies the server host's admin kubeconfig, pointed at
// the host's address on the bridge, into dir.
func writeKubeconfig(t *testing.T, h *hosts.Host, dir string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(filepath.Join(h.Root, "etc/kedge/kedge.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfg.Clusters {
		c.Server = "https://" + h.IP + ":6443"
	}
	p := filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func client(t *testing.T, kubeconfig string) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	return kubernetes.NewForConfigOrDie(cfg)
}

func ready(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// waitFor polls check until it is true; it fails at once if one of procs
// exits or an interrupt comes, and when timeout passes.
func waitFor(t *testing.T, interrupted <-chan os.Signal, timeout time.Duration, what string, procs []*hosts.Proc, check func() bool) {
	t.Helper()
	testenv.WaitUntil(t, timeout, what, func() bool {
		select {
		case s := <-interrupted:
			t.Fatalf("%v while waiting for %s", s, what)
		default:
		}
		for _, p := range procs {
			if err, done := p.Exited(); done {
				t.Fatalf("a kedge process exited (%v) while waiting for %s:\n%s", err, what, tailOf(p.Output(), 4000))
			}
		}
		return check()
	})
}

func saveLog(t *testing.T, dir, name string, p *hosts.Proc) {
	if err := os.WriteFile(filepath.Join(dir, name), []byte(p.Output()), 0o644); err != nil {
		t.Log(err)
	}
}

func tailOf(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

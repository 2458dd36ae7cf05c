//go:build bench

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/kedge/kedge/scripts/e2e/hosts"
	"github.com/kedge/kedge/scripts/procmem"
	"github.com/kedge/kedge/server/integration/harness"
)

// TestBenchAgent measures (does not assert) an agent on its own host:
// seconds from `kedge agent` start to Node Ready, RSS and PSS after $IDLE
// seconds idle and the CPU it used meanwhile, the start latency of pods of the test image, and the
// memory with 100 pods: the agent's, the shims', and each pod's shim and
// pause together (PSS). scripts/bench runs
// it (build tag bench) and prints the numbers as a Markdown table.
func TestBenchAgent(t *testing.T) {
	idle := idleTime(t)
	kedge := harness.Binary(t)
	net := hosts.NewNetwork(t)
	srvHost, h := net.AddHost(t, "server"), net.AddHost(t, "agent")
	stageTestImage(t, h)
	// The agent runs its own copy of the binary, so that the pages it maps
	// are not shared with (and counted for) the server.
	own := ownCopy(t, kedge, h)
	srv := srvHost.Start(t, kedge, "server", "--disable-agent")
	waitForServer(t, srvHost, srv)
	admin := adminClient(t, srvHost)
	// Let the controller-manager settle (it assigns pod CIDRs).
	waitFor(t, 60*time.Second, "the server's controllers", []*hosts.Proc{srv}, func() bool {
		_, err := admin.CoreV1().ServiceAccounts("default").Get(t.Context(), "default", metav1.GetOptions{})
		return err == nil
	})
	tok, err := os.ReadFile(filepath.Join(srvHost.Root, "var/lib/kedge/server/token"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	agent := h.Start(t, own, "agent", "--server", "https://"+srvHost.IP+":6443", "--token", strings.TrimSpace(string(tok)))
	procs := []*hosts.Proc{srv, agent}
	waitFor(t, 60*time.Second, "node Ready", procs, func() bool {
		n, err := admin.CoreV1().Nodes().Get(t.Context(), "agent", metav1.GetOptions{})
		return err == nil && nodeReady(n)
	})
	joinReady := time.Since(start)
	idleCPU := idleFor(t, agent.Cmd.Process.Pid, idle)
	agentRSS, agentPSS, err := procmem.MB(agent.Cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	shims, _ := processesMB("containerd-shim")
	t.Logf("agent idle memory (kB): %s; cluster DNS listening: %v", memoryBreakdown(agent.Cmd.Process.Pid),
		dnsListening(t, h))
	if dir := os.Getenv("AGENT_PROFILE_DIR"); dir != "" {
		profileAgent(t, admin, agent.Cmd.Process.Pid, dir)
	}

	paced := podStarts(t, admin, procs, "paced", 10, time.Second)
	deletePods(t, admin, procs, "paced")
	burst := podStarts(t, admin, procs, "burst", 100, 0)
	loadedRSS, loadedPSS, err := procmem.MB(agent.Cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	// What each pod adds besides its own container: its shim and its pause.
	loadedShims, shimsPSS := processesMB("containerd-shim")
	_, pausePSS := processesMB("pause")
	deletePods(t, admin, procs, "burst")

	fmt.Printf("BENCH | %.1f | %.0f / %.0f | %.1f | %.0f | %s | %s | %.0f / %.0f | %.0f / %.0f | %.1f |\n", joinReady.Seconds(), agentRSS, agentPSS, idleCPU, shims,
		paced, burst, loadedRSS, loadedPSS, loadedShims, shimsPSS, (shimsPSS+pausePSS)/100)
	for _, p := range []*hosts.Proc{agent, srv} {
		if err := p.Stop(30 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBenchSingleNode measures (does not assert) `kedge server` with its
// own node, the whole cluster in one process: seconds from start to Node
// Ready, then RSS, PSS and the CPU used over $IDLE seconds idle.
func TestBenchSingleNode(t *testing.T) {
	idle := idleTime(t)
	net := hosts.NewNetwork(t)
	h := net.AddHost(t, "solo")
	own := ownCopy(t, harness.Binary(t), h)
	start := time.Now()
	srv := h.Start(t, own, "server")
	procs := []*hosts.Proc{srv}
	waitFor(t, 120*time.Second, "the server (with its agent) to be ready", procs, srv.Ready)
	admin := adminClient(t, h)
	waitNodeReady(t, admin, "solo", procs)
	ready := time.Since(start)
	pid := srv.Cmd.Process.Pid
	idleCPU := idleFor(t, pid, idle)
	rss, pss, err := procmem.MB(pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("single node idle memory (kB): %s", memoryBreakdown(pid))
	fmt.Printf("NODE | %.1f | %.0f / %.0f | %.1f |\n", ready.Seconds(), rss, pss, idleCPU)
	if err := srv.Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// idleFor waits idle (measuring idle memory and CPU: the wait is the
// measurement) and returns the CPU process pid used meanwhile, in percent
// of a core.
func idleFor(t *testing.T, pid int, idle time.Duration) float64 {
	t.Helper()
	before, err := procmem.CPUSeconds(pid)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(idle)
	after, err := procmem.CPUSeconds(pid)
	if err != nil {
		t.Fatal(err)
	}
	return (after - before) / idle.Seconds() * 100
}

// idleTime is $IDLE seconds, 60 if unset.
func idleTime(t *testing.T) time.Duration {
	t.Helper()
	s := os.Getenv("IDLE")
	if s == "" {
		return 60 * time.Second
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		t.Fatalf("IDLE=%q: want a positive number of seconds", s)
	}
	return time.Duration(n) * time.Second
}

// ownCopy copies kedge into h's root, so that the process running it maps
// pages no other process shares (RSS = PSS for the executable's pages).
func ownCopy(t *testing.T, kedge string, h *hosts.Host) string {
	t.Helper()
	own := filepath.Join(h.Root, "kedge")
	data, err := os.ReadFile(kedge)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(own, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return own
}

// podStarts creates n pods on node agent, one every gap (all at once if gap
// is 0), and returns "p50 / p99" of creation to Running, in seconds.
func podStarts(t *testing.T, admin kubernetes.Interface, procs []*hosts.Proc, prefix string, n int, gap time.Duration) string {
	t.Helper()
	ctx := t.Context()
	pods := admin.CoreV1().Pods("default")
	w, err := pods.Watch(ctx, metav1.ListOptions{LabelSelector: "bench=" + prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var mu sync.Mutex
	created := map[string]time.Time{}
	running := map[string]time.Duration{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok || ev.Type == watch.Deleted || p.Status.Phase != corev1.PodRunning {
				continue
			}
			mu.Lock()
			if c, ok := created[p.Name]; ok {
				if _, seen := running[p.Name]; !seen {
					running[p.Name] = time.Since(c)
				}
			}
			all := len(running) == n
			mu.Unlock()
			if all {
				return
			}
		}
	}()
	for i := range n {
		p := testPod(fmt.Sprintf("%s-%d", prefix, i), "agent")
		p.Labels["bench"] = prefix
		mu.Lock()
		created[p.Name] = time.Now()
		mu.Unlock()
		if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if gap > 0 {
			time.Sleep(gap) // pacing the load is the point of this run
		}
	}
	waitFor(t, 10*time.Minute, fmt.Sprintf("%d %s pods Running", n, prefix), procs, func() bool {
		select {
		case <-done:
			return true
		default:
			return false
		}
	})
	var d []time.Duration
	for _, v := range running {
		d = append(d, v)
	}
	slices.Sort(d)
	pct := func(q float64) float64 { return d[min(len(d)-1, int(q*float64(len(d))))].Seconds() }
	return fmt.Sprintf("%.2f / %.2f", pct(0.5), pct(0.99))
}

// deletePods deletes the pods podStarts made with prefix and waits until they are gone.
func deletePods(t *testing.T, admin kubernetes.Interface, procs []*hosts.Proc, prefix string) {
	t.Helper()
	pods := admin.CoreV1().Pods("default")
	sel := metav1.ListOptions{LabelSelector: "bench=" + prefix}
	if err := pods.DeleteCollection(t.Context(), metav1.DeleteOptions{}, sel); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Minute, prefix+" pods gone", procs, func() bool {
		l, err := pods.List(t.Context(), sel)
		return err == nil && len(l.Items) == 0
	})
}

// profileAgent keeps, in dir, the idle agent's heap profile (after a GC)
// and goroutine profile, fetched from its kubelet's /debug/pprof through the
// API server (the kubelet, containerd, kube-proxy and flannel share the
// agent's process, so this is all of them), its /proc/PID/smaps, and
// which pages of its executable are resident (resident.txt).
func profileAgent(t *testing.T, admin kubernetes.Interface, pid int, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// First the resident pages of the executable, before the profiles'
	// symbolisation touches more of them.
	pages, err := procmem.Executable(pid, fmt.Sprintf("/proc/%d/exe", pid), 4)
	if err != nil {
		t.Fatal(err)
	}
	report := "resident pages of the executable by section:\n" + procmem.Top(pages.Sections, 10) +
		"\nresident code by package:\n" + procmem.Top(pages.Packages, 80)
	if err := os.WriteFile(filepath.Join(dir, "resident.txt"), []byte(report), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"heap", "goroutine"} {
		b, err := admin.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes/agent/proxy/debug/pprof", name).
			Param("gc", "1").DoRaw(t.Context())
		if err != nil {
			t.Fatalf("agent profile %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".pprof"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	smaps, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "smaps"), smaps, 0o644); err != nil {
		t.Fatal(err)
	}
}

// memoryBreakdown is the RssAnon, RssFile and RssShmem lines of a process.
func memoryBreakdown(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "Rss") || strings.HasPrefix(line, "VmRSS") {
			out = append(out, strings.Join(strings.Fields(line), " "))
		}
	}
	return strings.Join(out, ", ")
}

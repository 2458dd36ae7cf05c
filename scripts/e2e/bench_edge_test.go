//go:build bench

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kedge/kedge/scripts/e2e/hosts"
	"github.com/kedge/kedge/server/integration/harness"
)

// TestBenchEdge measures (does not assert) an agent on a link that fails,
// with one server:
//   - tunnel reconnect: the agent's link is cut (nft drop) until both ends
//     have dropped the tunnel session, then restored; the time from the
//     link's return to the server's new session, and to `kubectl logs`
//     working through it (the server cannot reach the kubelet directly),
//     p50 / p99 over $CUTS cuts (default 20, one after another);
//   - offline boot: while cut off, the device reboots (agent stopped, every
//     process killed, /run and network state gone) and the agent starts
//     again; the time from the agent's start to all $PODS pods (default 5)
//     running (each has a running container; checked to answer inside the
//     host after), median and range over $BOOTS boots (default 3).
//
// scripts/bench runs it (build tag bench) and prints an "EDGE | ... |" row.
func TestBenchEdge(t *testing.T) {
	cuts, pods, boots := envInt(t, "CUTS", 20), envInt(t, "PODS", 5), envInt(t, "BOOTS", 3)
	kedge := harness.Binary(t)
	net := hosts.NewNetwork(t)
	srvHost, edge := net.AddHost(t, "server"), net.AddHost(t, "edge")
	stageTestImage(t, edge)
	srv, join := startServer(t, kedge, srvHost, "--disable-agent")
	// Only the tunnel reaches the edge's kubelet.
	table := "kedge-bench-no-inbound"
	nft(t, edge, fmt.Sprintf(`table inet %s { chain input { type filter hook input priority -10; policy accept; ip saddr %s tcp dport 10250 drop; }; }`,
		table, srvHost.IP))
	t.Cleanup(func() {
		_ = exec.Command("ip", "netns", "exec", edge.NS, "nft", "delete", "table", "inet", table).Run()
	})
	agent := edge.Start(t, join...)
	procs := []*hosts.Proc{srv, agent}
	admin := adminClient(t, srvHost)
	waitNodeReady(t, admin, "edge", procs)
	var names []string
	for i := range pods {
		name := fmt.Sprintf("bench-%d", i)
		names = append(names, name)
		if _, err := admin.CoreV1().Pods("default").Create(t.Context(), testPod(name, "edge"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range names {
		waitPodRunning(t, admin, name, procs)
	}
	k := kubectlOn(kedge, srvHost)
	logsWork := func() bool {
		out, err := k("logs", "bench-0", "--request-timeout", "3s")
		return err == nil && strings.Contains(out, "testimage listening on :8080")
	}
	waitFor(t, 30*time.Second, "kubectl logs through the tunnel", procs, logsWork)

	// Tunnel reconnect after the link returns.
	started := func() float64 { return serverCounter(t, admin, "kedge_tunnel_sessions_started_total", "edge") }
	ended := func() float64 { return serverCounter(t, admin, "kedge_tunnel_sessions_ended_total", "edge") }
	lost := func() float64 { return agentCounter(t, edge, "kedge_agent_tunnel_sessions_lost_total") }
	t.Cleanup(func() { cut(t, edge, true) })
	var detect, session, logs []time.Duration
	for i := range cuts {
		endedBefore, lostBefore := ended(), lost()
		cut(t, edge, false)
		down := time.Now()
		poll(t, 30*time.Second, "both ends to drop the session", procs, func() bool {
			return ended() > endedBefore && lost() > lostBefore
		})
		detect = append(detect, time.Since(down))
		startedBefore := started()
		cut(t, edge, true)
		up := time.Now()
		poll(t, 30*time.Second, "a new tunnel session", procs, func() bool { return started() > startedBefore })
		session = append(session, time.Since(up))
		poll(t, 30*time.Second, "kubectl logs after the link returned", procs, logsWork)
		logs = append(logs, time.Since(up))
		t.Logf("cut %d: both ends dropped the session after %.1f s; after the link returned: new session %.2f s, logs %.2f s",
			i+1, detect[i].Seconds(), session[i].Seconds(), logs[i].Seconds())
	}

	// Offline boot.
	waitFor(t, 30*time.Second, "the agent's cache to hold every pod Running", procs, func() bool {
		files, _ := filepath.Glob(filepath.Join(edge.Root, "var/lib/kedge/agent/cache/*.json"))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			s := string(b)
			if strings.Contains(s, "spec.nodeName") && strings.Count(s, `"phase":"Running"`) >= pods {
				return true
			}
		}
		return false
	})
	cut(t, edge, false)
	var bootTimes []time.Duration
	for i := range boots {
		if err := agent.Stop(20 * time.Second); err != nil {
			t.Fatalf("agent stop: %v\n%s", err, agent.Output())
		}
		edge.Reboot(t)
		boot := time.Now()
		agent = edge.Start(t, join...)
		procs = []*hosts.Proc{agent}
		poll(t, 2*time.Minute, fmt.Sprintf("%d pods running after an offline reboot", pods), procs, func() bool {
			return runningPods(t, edge, kedge) == pods
		})
		bootTimes = append(bootTimes, time.Since(boot))
		waitFor(t, 30*time.Second, "every pod answering after an offline reboot", procs, func() bool {
			return allServing(t, edge, kedge, names)
		})
		t.Logf("offline boot %d: agent start to %d pods running %.1f s (all answering %.1f s)", i+1, pods,
			bootTimes[i].Seconds(), time.Since(boot).Seconds())
	}
	cut(t, edge, true)

	fmt.Printf("EDGE | %.2f / %.2f | %.2f / %.2f | %.1f / %.1f | %.1f (%.1f–%.1f) |\n",
		pct(session, 50).Seconds(), pct(session, 99).Seconds(), pct(logs, 50).Seconds(), pct(logs, 99).Seconds(),
		pct(detect, 50).Seconds(), pct(detect, 99).Seconds(),
		pct(bootTimes, 50).Seconds(), pct(bootTimes, 0).Seconds(), pct(bootTimes, 100).Seconds())
	for _, p := range []*hosts.Proc{agent, srv} {
		if err := p.Stop(30 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
}

// runningPods counts the pods with a running container in h (one crictl call).
func runningPods(t *testing.T, h *hosts.Host, kedge string) int {
	t.Helper()
	p := h.Start(t, kedge, "crictl", "ps", "--state", "running", "-o", "json")
	waitFor(t, 30*time.Second, "kedge crictl ps", nil, func() bool { _, done := p.Exited(); return done })
	var out struct {
		Containers []struct {
			Labels map[string]string `json:"labels"`
		} `json:"containers"`
	}
	if err, _ := p.Exited(); err != nil || json.Unmarshal([]byte(p.Output()), &out) != nil {
		return 0 // containerd not serving yet, for example
	}
	seen := map[string]bool{}
	for _, c := range out.Containers {
		seen[c.Labels["io.kubernetes.pod.namespace"]+"/"+c.Labels["io.kubernetes.pod.name"]] = true
	}
	return len(seen)
}

// allServing reports whether every named pod has exactly one ready sandbox
// whose container answers inside the host.
func allServing(t *testing.T, h *hosts.Host, kedge string, names []string) bool {
	t.Helper()
	for _, name := range names {
		ids := crictl(t, h, kedge, "pods", "-q", "--name", "^"+name+"$", "--state", "ready")
		if len(ids) != 1 {
			return false
		}
		ip := sandboxIP(t, h, kedge, ids[0])
		if ip == "" || curlFrom(h, "http://"+ip+":8080/") != "hello from "+name+"\n" {
			return false
		}
	}
	return true
}

// poll is waitFor with a 50 ms period, for measurements.
func poll(t *testing.T, timeout time.Duration, what string, procs []*hosts.Proc, check func() bool) {
	t.Helper()
	waitEvery(t, 50*time.Millisecond, timeout, what, procs, check)
}

// envInt is the positive integer in the environment variable name, or def.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

//go:build chaos

package e2e

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kedge/kedge/scripts/procmem"
)

// soakSettings are KEDGE_SOAK_DURATION (default 2h: how long edge1 stays
// cut off) and KEDGE_SOAK_EVERY (default 10m: how often it is measured).
func soakSettings(t *testing.T) (d, every time.Duration) {
	d, every = 2*time.Hour, 10*time.Minute
	for name, v := range map[string]*time.Duration{"KEDGE_SOAK_DURATION": &d, "KEDGE_SOAK_EVERY": &every} {
		if s := os.Getenv(name); s != "" {
			var err error
			if *v, err = time.ParseDuration(s); err != nil || *v <= 0 {
				t.Fatalf("%s=%q: want a positive duration", name, s)
			}
		}
	}
	return d, every
}

// soakSample is one measurement of the cut-off agent.
type soakSample struct {
	at                 time.Duration
	rssMB, pssMB       float64
	cacheKB, podLogsMB float64
	serving            bool
}

// TestOfflineSoak: edge1 is cut off from the server for KEDGE_SOAK_DURATION
// with a crash-looping container and a pod writing logs all the time. Its
// agent's memory and its API cache stay level and the pod logs stay within
// the kubelet's rotation; when the link returns the tunnel answers within
// 5 s, no pod was recreated and the crash-looping pod's restarts reach the
// server. `make e2e-soak` runs it; not in .ci/run.
func TestOfflineSoak(t *testing.T) {
	d, every := soakSettings(t)
	c := startChaosCluster(t)
	edge := c.agents[0]
	agent := c.procs[1]
	if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", agent.Cmd.Process.Pid)); strings.TrimSpace(string(comm)) != "kedge" {
		t.Fatalf("process %d is %q, want the kedge agent", agent.Cmd.Process.Pid, comm)
	}
	admin := adminClient(t, c.srvHost)
	pods := admin.CoreV1().Pods("default")
	for name, args := range map[string][]string{"crashloop": {"get", "http://127.0.0.1:1/"}, "chatter": {"chatter"}} {
		p := testPod(name, "edge1")
		p.Spec.Containers[0].Command = append([]string{"/testimage"}, args...)
		if _, err := pods.Create(t.Context(), p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	restarts := func() int32 {
		p, err := pods.Get(t.Context(), "crashloop", metav1.GetOptions{})
		if err != nil || len(p.Status.ContainerStatuses) == 0 {
			return -1
		}
		return p.Status.ContainerStatuses[0].RestartCount
	}
	waitFor(t, 2*time.Minute, "chatter Running and crashloop restarted", c.procs, func() bool {
		p, err := pods.Get(t.Context(), "chatter", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning && restarts() >= 1
	})
	c.uidsBefore = c.uids(t)
	restartsBefore := restarts()

	shop := c.podsByNode["edge1"]
	url := "http://" + shop.Status.PodIP + ":8080/"
	want := "hello from " + shop.Name + "\n"
	cacheDir := filepath.Join(edge.Root, "var/lib/kedge/agent/cache")
	podLogs := filepath.Join(edge.Root, "var/log/pods")
	measure := func(at time.Duration) soakSample {
		rss, pss, err := procmem.MB(agent.Cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		return soakSample{at: at, rssMB: rss, pssMB: pss, cacheKB: float64(dirBytes(t, cacheDir)) / 1024,
			podLogsMB: float64(dirBytes(t, podLogs)) / (1 << 20), serving: curlFrom(edge, url) == want}
	}

	cut(t, edge, false)
	t.Cleanup(func() { cut(t, edge, true) })
	cutAt := time.Now()
	samples := []soakSample{measure(0)}
	for next := every; next <= d; next += every {
		time.Sleep(time.Until(cutAt.Add(next))) // the measuring interval
		if err, done := agent.Exited(); done {
			t.Fatalf("the agent exited while cut off: %v\n%s", err, agent.Output())
		}
		samples = append(samples, measure(time.Since(cutAt)))
	}
	var table strings.Builder
	table.WriteString("| time cut off | agent RSS MB | agent PSS MB | API cache KB | pod logs MB | pod serving |\n|---|---|---|---|---|---|\n")
	for _, s := range samples {
		fmt.Fprintf(&table, "| %s | %.1f | %.1f | %.0f | %.1f | %v |\n", s.at.Round(time.Minute), s.rssMB, s.pssMB, s.cacheKB, s.podLogsMB, s.serving)
	}
	t.Logf("edge1 cut off for %s:\n%s", d, table.String())

	// Level: the second half of the samples grows no more than 10% (plus
	// 8 MB of noise) over the first half's peak.
	half := len(samples) / 2
	peak := func(ss []soakSample, f func(soakSample) float64) float64 {
		m := 0.0
		for _, s := range ss {
			m = max(m, f(s))
		}
		return m
	}
	for _, m := range []struct {
		what  string
		f     func(soakSample) float64
		slack float64
	}{
		{"agent RSS MB", func(s soakSample) float64 { return s.rssMB }, 8},
		{"agent PSS MB", func(s soakSample) float64 { return s.pssMB }, 8},
		{"API cache KB", func(s soakSample) float64 { return s.cacheKB }, 64},
	} {
		if first, second := peak(samples[:half], m.f), peak(samples[half:], m.f); second > first*1.1+m.slack {
			t.Errorf("%s kept growing while cut off: first half's peak %.1f, second half's %.1f", m.what, first, second)
		}
	}
	// The kubelet keeps 5 files of 10 MiB per container (rotated ones gzipped).
	if p := peak(samples, func(s soakSample) float64 { return s.podLogsMB }); p > 64 {
		t.Errorf("pod logs reached %.1f MB, want at most 64 (the kubelet's rotation)", p)
	}
	for _, s := range samples {
		if !s.serving {
			t.Errorf("the shop pod did not answer inside edge1 %s into the cut", s.at.Round(time.Minute))
		}
	}

	cut(t, edge, true)
	back := time.Now()
	waitFor(t, 30*time.Second, "logs through the tunnel after the link returned", c.procs, func() bool { return c.logsWork(shop.Name) })
	if after := time.Since(back); after > 5*time.Second {
		t.Errorf("logs came back %.1fs after the link returned, want within 5 s", after.Seconds())
	} else {
		t.Logf("logs through the tunnel %.1fs after the link returned", after.Seconds())
	}
	waitNodeReady(t, admin, "edge1", c.procs)
	waitFor(t, 2*time.Minute, "crashloop's restarts while cut off reach the server", c.procs, func() bool { return restarts() > restartsBefore })
	t.Logf("crashloop restarts: %d before the cut, %d after", restartsBefore, restarts())
	c.checkNothingRecreated(t)
	c.stop(t)
}

// dirBytes is the size of the files under dir (files that go away while
// it counts, as rotated logs do, are not counted).
func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if e.Type().IsRegular() {
			if info, err := e.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

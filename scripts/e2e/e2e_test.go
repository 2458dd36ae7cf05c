// Package e2e runs the kedge binary as several hosts (network, mount and
// cgroup namespaces on a private bridge) and checks what crosses them.
package e2e

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kedge/kedge/scripts/e2e/hosts"
	"github.com/kedge/kedge/scripts/imagebuild/ociimage"
	"github.com/kedge/kedge/scripts/procmem"
	"github.com/kedge/kedge/server/integration/harness"
)

// waitFor calls check every 200 ms until it returns true; it fails the
// test if one of procs exits or timeout passes first.
func waitFor(t *testing.T, timeout time.Duration, what string, procs []*hosts.Proc, check func() bool) {
	t.Helper()
	waitEvery(t, 200*time.Millisecond, timeout, what, procs, check)
}

// waitEvery is waitFor with the given period.
func waitEvery(t *testing.T, period, timeout time.Duration, what string, procs []*hosts.Proc, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !check() {
		for _, p := range procs {
			if err, done := p.Exited(); done {
				t.Fatalf("a process exited (%v) while waiting for %s:\n%s", err, what, p.Output())
			}
		}
		if time.Now().After(deadline) {
			var out []string
			for _, p := range procs {
				out = append(out, p.Output())
			}
			t.Fatalf("timed out waiting for %s; output:\n%s", what, strings.Join(out, "\n---\n"))
		}
		time.Sleep(period)
	}
}

// TestAgentJoinsServerAcrossHosts starts a server and an agent on two hosts
// and checks that the agent joins over the bridge and runs containerd in
// its own cgroup namespace.
func TestAgentJoinsServerAcrossHosts(t *testing.T) {
	kedge := harness.Binary(t)
	net := hosts.NewNetwork(t)
	srvHost := net.AddHost(t, "server")
	agentHost := net.AddHost(t, "agent")

	srv := srvHost.Start(t, kedge, "server", "--disable-agent")
	waitForServer(t, srvHost, srv)
	tokenBytes, err := os.ReadFile(filepath.Join(srvHost.Root, "var/lib/kedge/server/token"))
	if err != nil {
		t.Fatal(err)
	}
	// The test image is brought in as a tarball, without a registry.
	imagesDir := filepath.Join(agentHost.Root, "var/lib/kedge/agent/images")
	if err := os.MkdirAll(imagesDir, 0o700); err != nil {
		t.Fatal(err)
	}
	buildTestImage(t, filepath.Join(imagesDir, "testimage.tar"))
	agentStart := time.Now()
	agent := agentHost.Start(t, kedge, "agent", "--server", "https://"+srvHost.IP+":6443", "--token", strings.TrimSpace(string(tokenBytes)),
		"--node-label", "site=shop-12", "--node-taint", "dedicated=edge:PreferNoSchedule", "--kubelet-arg", "max-pods=50")
	waitFor(t, 90*time.Second, "the agent to be ready", []*hosts.Proc{srv, agent}, agent.Ready)
	// The agent's state went to its own host's directories.
	if _, err := os.Stat(filepath.Join(agentHost.Root, "var/lib/kedge/agent/cred/kubelet-client.crt")); err != nil {
		t.Fatalf("agent credentials not in the agent host's /var/lib/kedge: %v", err)
	}
	if _, err := os.Stat(filepath.Join(agentHost.Root, "run/kedge/containerd/containerd.sock")); err != nil {
		t.Fatalf("containerd socket not in the agent host's /run: %v", err)
	}
	admin := adminClient(t, srvHost)
	ctx := t.Context()
	waitFor(t, 60*time.Second, "node agent Ready", []*hosts.Proc{srv, agent}, func() bool {
		n, err := admin.CoreV1().Nodes().Get(ctx, "agent", metav1.GetOptions{})
		if err != nil {
			return false
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return true
			}
		}
		return false
	})
	t.Logf("agent start to node Ready: %.1fs", time.Since(agentStart).Seconds())
	checkAgentUsesLB(t, agentHost, srvHost, agent)
	node, err := admin.CoreV1().Nodes().Get(ctx, "agent", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if node.Labels["site"] != "shop-12" {
		t.Errorf("node labels = %v, want site=shop-12", node.Labels)
	}
	// The node lifecycle controller may still be removing its not-ready
	// taint; ours must be there.
	if !slices.ContainsFunc(node.Spec.Taints, func(tn corev1.Taint) bool {
		return tn.Key == "dedicated" && tn.Value == "edge" && tn.Effect == corev1.TaintEffectPreferNoSchedule
	}) {
		t.Errorf("node taints = %v, want dedicated=edge:PreferNoSchedule among them", node.Spec.Taints)
	}
	if pods := node.Status.Capacity[corev1.ResourcePods]; pods.Value() != 50 {
		t.Errorf("node pod capacity = %v, want 50 from --kubelet-arg max-pods=50", pods.String())
	}

	pod, err := admin.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "web", Image: "kedge.local/testimage:1", ImagePullPolicy: corev1.PullNever,
		}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 90*time.Second, "the test pod Running", []*hosts.Proc{srv, agent}, func() bool {
		pod, err = admin.CoreV1().Pods("default").Get(ctx, "web", metav1.GetOptions{})
		return err == nil && pod.Status.Phase == corev1.PodRunning && pod.Status.PodIP != ""
	})
	// Logs travel apiserver -> kubelet (serving cert from kedge's CA, webhook authn/authz).
	waitFor(t, 30*time.Second, "pod logs through the kubelet", []*hosts.Proc{srv, agent}, func() bool {
		b, err := admin.CoreV1().Pods("default").GetLogs("web", &corev1.PodLogOptions{}).DoRaw(ctx)
		return err == nil && strings.Contains(string(b), "testimage listening on :8080")
	})
	out, err := exec.Command("ip", "netns", "exec", agentHost.NS, "curl", "-s", "--max-time", "5", "http://"+pod.Status.PodIP+":8080/").CombinedOutput()
	if err != nil || string(out) != "hello from web\n" {
		t.Fatalf("pod answered %q (%v)", out, err)
	}
	// A ClusterIP Service answers through kube-proxy's rules on the node.
	svc, err := admin.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the ClusterIP Service to answer on the node", []*hosts.Proc{srv, agent}, func() bool {
		out, err := exec.Command("ip", "netns", "exec", agentHost.NS, "curl", "-s", "--max-time", "2", "http://"+svc.Spec.ClusterIP+"/").CombinedOutput()
		return err == nil && string(out) == "hello from web\n"
	})
	shims, _ := processesMB("containerd-shim")
	agentRSS, _, _ := procmem.MB(agent.Cmd.Process.Pid)
	t.Logf("with one pod: agent (kedge agent + containerd + kubelet) RSS %.0f MB, shims %.0f MB", agentRSS, shims)
	if err := admin.CoreV1().Pods("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := agent.Stop(15 * time.Second); err != nil {
		t.Fatalf("agent stop: %v\n%s", err, agent.Output())
	}
	if err := srv.Stop(15 * time.Second); err != nil {
		t.Fatalf("server stop: %v\n%s", err, srv.Output())
	}
}

// waitForServer waits until the server host answers /readyz (anonymously)
// over the bridge.
func waitForServer(t *testing.T, h *hosts.Host, srv *hosts.Proc) {
	t.Helper()
	insecure := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	waitFor(t, 90*time.Second, "the server's /readyz over the bridge", []*hosts.Proc{srv}, func() bool {
		resp, err := insecure.Get("https://" + h.IP + ":6443/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// adminClient reads the server host's admin kubeconfig and points it at the
// host's address on the bridge.
func adminClient(t *testing.T, h *hosts.Host) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(h.Root, "etc/kedge/kedge.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Host = "https://" + h.IP + ":6443"
	return kubernetes.NewForConfigOrDie(cfg)
}

// buildTestImage builds the test image tarball at out.
func buildTestImage(t *testing.T, out string) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "testimage")
	cmd := exec.Command("go", "build", "-ldflags", "-s -w", "-o", bin, "github.com/kedge/kedge/scripts/images/testimage")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build testimage: %v\n%s", err, b)
	}
	if err := ociimage.WriteTarball(bin, "kedge.local/testimage:1", "", out); err != nil {
		t.Fatal(err)
	}
}

// processesMB sums the Rss and the Pss, in MB, of every process on this
// machine whose name starts with one of prefixes (containerd-shim, pause).
func processesMB(prefixes ...string) (rss, pss float64) {
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		for _, p := range prefixes {
			if strings.HasPrefix(string(comm), p) {
				if r, s, err := procmem.MB(pid); err == nil {
					rss, pss = rss+r, pss+s
				}
				break
			}
		}
	}
	return rss, pss
}

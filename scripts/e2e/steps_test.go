package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kedge/kedge/scripts/e2e/hosts"
)

var testImage struct {
	once sync.Once
	path string
	dir  string
}

// stageTestImage puts the test image tarball (built once per test binary)
// into the host's agent images directory, so that the agent imports it.
func stageTestImage(t *testing.T, h *hosts.Host) {
	t.Helper()
	testImage.once.Do(func() {
		dir, err := os.MkdirTemp("", "kedge-e2e-image-")
		if err != nil {
			t.Fatal(err)
		}
		testImage.dir = dir
		testImage.path = filepath.Join(dir, "testimage.tar")
		buildTestImage(t, testImage.path)
	})
	if testImage.path == "" {
		t.Fatal("the test image could not be built")
	}
	dir := filepath.Join(h.Root, "var/lib/kedge/agent/images")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(testImage.path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "testimage.tar"), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestMain removes the test image built by stageTestImage.
func TestMain(m *testing.M) {
	code := m.Run()
	if testImage.dir != "" {
		os.RemoveAll(testImage.dir)
	}
	os.Exit(code)
}

// waitNodeReady waits until node has condition Ready=True.
func waitNodeReady(t *testing.T, c kubernetes.Interface, node string, procs []*hosts.Proc) *corev1.Node {
	t.Helper()
	var n *corev1.Node
	waitFor(t, 90*time.Second, "node "+node+" Ready", procs, func() bool {
		var err error
		n, err = c.CoreV1().Nodes().Get(t.Context(), node, metav1.GetOptions{})
		return err == nil && nodeReady(n)
	})
	return n
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// waitPodRunning waits until the default-namespace pod is Running with an IP.
func waitPodRunning(t *testing.T, c kubernetes.Interface, name string, procs []*hosts.Proc) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	waitFor(t, 90*time.Second, "pod "+name+" Running", procs, func() bool {
		var err error
		pod, err = c.CoreV1().Pods("default").Get(t.Context(), name, metav1.GetOptions{})
		return err == nil && pod.Status.Phase == corev1.PodRunning && pod.Status.PodIP != "" && len(pod.Status.ContainerStatuses) > 0
	})
	return pod
}

// curlFrom fetches url from inside the host's network namespace and returns
// the body ("" on any failure).
func curlFrom(h *hosts.Host, url string) string {
	out, err := exec.Command("ip", "netns", "exec", h.NS, "curl", "-s", "--max-time", "3", url).Output()
	if err != nil {
		return ""
	}
	return string(out)
}

// upstreamAnswers reports whether the agent's load balancer in h reaches a
// server's /readyz: the agent's API cache asks the same every second and
// serves from its cache while it does not.
func upstreamAnswers(h *hosts.Host) bool {
	ca := filepath.Join(h.Root, "var/lib/kedge/agent/cred/server-ca.crt")
	out, err := exec.Command("ip", "netns", "exec", h.NS, "curl", "-s", "--max-time", "1", "--cacert", ca,
		"https://127.0.0.1:6444/readyz").Output()
	return err == nil && string(out) == "ok"
}

// curlPost POSTs to url from inside the host and returns the body.
func curlPost(h *hosts.Host, url string) string {
	out, err := exec.Command("ip", "netns", "exec", h.NS, "curl", "-s", "--max-time", "3", "-X", "POST", url).Output()
	if err != nil {
		return ""
	}
	return string(out)
}

// cut cuts the host's link (up=false) or restores it (up=true): an
// nftables table in the host drops everything through eth0, the way a dead
// uplink looks to a device (its interfaces and routes stay). Locally sent
// packets are matched by their address on the bridge's network, which a
// Service address DNATed to a local pod no longer has (the output hook
// keeps the out interface chosen before DNAT). Restoring an uncut link is a no-op.
func cut(t *testing.T, h *hosts.Host, up bool) {
	t.Helper()
	rules := "table inet " + hosts.CutTable + " {\n" +
		"  chain cut_in { type filter hook input priority -300; iifname \"eth0\" drop; }\n" +
		"  chain cut_out { type filter hook output priority 0; oifname \"eth0\" ip daddr " + h.Subnet() + " drop; }\n" +
		"  chain cut_fwd { type filter hook forward priority 0; iifname \"eth0\" drop; oifname \"eth0\" drop; }\n}\n"
	var cmd *exec.Cmd
	if up {
		cmd = exec.Command("ip", "netns", "exec", h.NS, "sh", "-c", "nft delete table inet "+hosts.CutTable+" 2>/dev/null || true")
	} else {
		cmd = exec.Command("ip", "netns", "exec", h.NS, "nft", "-f", "-")
		cmd.Stdin = strings.NewReader(rules)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cut=%v on %s: %v\n%s", !up, h.Name, err, out)
	}
}

// startServer runs `kedge server args...` on h, waits until it is ready
// (with its own node unless args disable the agent), and returns it and the
// `kedge agent` command line that joins it with its server token.
func startServer(t *testing.T, kedge string, h *hosts.Host, args ...string) (*hosts.Proc, []string) {
	t.Helper()
	srv := h.Start(t, append([]string{kedge, "server"}, args...)...)
	waitFor(t, 120*time.Second, "the server on "+h.Name+" to be ready", []*hosts.Proc{srv}, srv.Ready)
	tok, err := os.ReadFile(filepath.Join(h.Root, "var/lib/kedge/server/token"))
	if err != nil {
		t.Fatal(err)
	}
	return srv, []string{kedge, "agent", "--server", "https://" + h.IP + ":6443", "--token", strings.TrimSpace(string(tok))}
}

package e2e

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kedge/kedge/scripts/e2e/hosts"
	"github.com/kedge/kedge/server/integration/harness"
)

// TestServerIsANode: `kedge server` alone is a one-node cluster that runs
// pods (its embedded agent joins it over loopback), and `kedge crictl` on
// that node sees the pod's container.
func TestServerIsANode(t *testing.T) {
	kedge := harness.Binary(t)
	net := hosts.NewNetwork(t)
	h := net.AddHost(t, "solo")
	stageTestImage(t, h)
	srv := h.Start(t, kedge, "server", "--node-label", "role=solo")
	waitFor(t, 120*time.Second, "the server (with its agent) to be ready", []*hosts.Proc{srv}, srv.Ready)
	admin := adminClient(t, h)
	ctx := t.Context()
	waitNodeReady(t, admin, "solo", []*hosts.Proc{srv})
	node, err := admin.CoreV1().Nodes().Get(ctx, "solo", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if node.Labels["role"] != "solo" {
		t.Errorf("server node labels = %v, want role=solo", node.Labels)
	}
	if _, err := admin.CoreV1().Pods("default").Create(ctx, testPod("web", ""), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := waitPodRunning(t, admin, "web", []*hosts.Proc{srv})
	if pod.Spec.NodeName != "solo" {
		t.Fatalf("pod ran on %q, want the server's node", pod.Spec.NodeName)
	}
	if got := curlFrom(h, "http://"+pod.Status.PodIP+":8080/"); got != "hello from web\n" {
		t.Fatalf("pod answered %q", got)
	}
	crictl := h.Start(t, kedge, "crictl", "ps", "--name", "web", "-q")
	waitFor(t, 30*time.Second, "kedge crictl to finish", nil, func() bool { _, done := crictl.Exited(); return done })
	id := strings.TrimPrefix(pod.Status.ContainerStatuses[0].ContainerID, "containerd://")
	if err, _ := crictl.Exited(); err != nil || !strings.Contains(crictl.Output(), id) {
		t.Fatalf("kedge crictl ps (want container %s): %v\n%s", id, err, crictl.Output())
	}
	if err := srv.Stop(20 * time.Second); err != nil {
		t.Fatalf("server stop: %v\n%s", err, srv.Output())
	}
	if !strings.Contains(srv.Output(), "kedge server stopped") {
		t.Fatalf("no clean stop:\n%s", srv.Output())
	}
}

// testPod is a pod of the test image, on node if it is not empty.
func testPod(name, node string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{
			Name: "web", Image: "kedge.local/testimage:1", ImagePullPolicy: corev1.PullNever,
		}}},
	}
}

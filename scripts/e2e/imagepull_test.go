package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/kedge/kedge/scripts/e2e/hosts"
	"github.com/kedge/kedge/server/integration/harness"
)

// silentRegistry accepts connections on the host side of the bridge and
// never answers, as a registry behind a dead link looks: every pull from it
// hangs until containerd gives up. connected is closed at the first
// connection.
type silentRegistry struct {
	addr      string
	connected chan struct{}
	once      sync.Once
}

func startSilentRegistry(t *testing.T, ip string) *silentRegistry {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	r := &silentRegistry{addr: l.Addr().String(), connected: make(chan struct{})}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			r.once.Do(func() { close(r.connected) })
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return r
}

// TestPreloadedImageWhileAnotherPodPulls: a pod that asks to pull an image
// (imagePullPolicy Always) from a registry that never answers must not
// keep pods in other namespaces, which use the same image already on the
// node with IfNotPresent, from starting. With upstream's default
// imagePullCredentialsVerificationPolicy (NeverVerifyPreloadedImages) the
// kubelet makes them pull while the first pull is in flight, and they hang
// with it.
func TestPreloadedImageWhileAnotherPodPulls(t *testing.T) {
	kedge := harness.Binary(t)
	net := hosts.NewNetwork(t)
	h := net.AddHost(t, "puller")
	stageTestImage(t, h)
	reg := startSilentRegistry(t, net.Gateway())
	registries := fmt.Sprintf("mirrors:\n  kedge.local:\n    endpoint: [\"http://%s\"]\n", reg.addr)
	if err := os.WriteFile(filepath.Join(h.Root, "etc/kedge/registries.yaml"), []byte(registries), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, _ := startServer(t, kedge, h)
	procs := []*hosts.Proc{srv}
	admin := adminClient(t, h)
	ctx := t.Context()
	waitNodeReady(t, admin, "puller", procs)

	pod := func(ns string, policy corev1.PullPolicy) *corev1.Pod {
		if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		p, err := admin.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "web", Image: "kedge.local/testimage:1", ImagePullPolicy: policy,
			}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	pod("always", corev1.PullAlways)
	select {
	case <-reg.connected:
	case <-time.After(90 * time.Second):
		t.Fatal("the Always pod's pull never reached the registry")
	}
	// The pull now hangs; pods in other namespaces start from the image
	// already on the node.
	start := time.Now()
	namespaces := []string{"other-1", "other-2", "other-3"}
	for _, ns := range namespaces {
		pod(ns, corev1.PullIfNotPresent)
	}
	for _, ns := range namespaces {
		waitFor(t, 30*time.Second, "the IfNotPresent pod in "+ns+" Running", procs, func() bool {
			p, err := admin.CoreV1().Pods(ns).Get(ctx, "web", metav1.GetOptions{})
			return err == nil && p.Status.Phase == corev1.PodRunning
		})
		events, err := admin.CoreV1().Events(ns).List(ctx, metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("reason", "Pulling").String()})
		if err != nil {
			t.Fatal(err)
		}
		if len(events.Items) > 0 {
			t.Errorf("the IfNotPresent pod in %s pulled: %s", ns, events.Items[0].Message)
		}
	}
	t.Logf("3 IfNotPresent pods Running %.1f s after they were created, while the Always pod's pull hung", time.Since(start).Seconds())

	a, err := admin.CoreV1().Pods("always").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if a.Status.Phase == corev1.PodRunning {
		t.Fatal("the Always pod is Running: its pull did not hang, so the test showed nothing")
	}
}

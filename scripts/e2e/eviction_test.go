package e2e

import (
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kedge/kedge/embedded/tainteviction"
	"github.com/kedge/kedge/scripts/e2e/hosts"
	"github.com/kedge/kedge/server/integration/harness"
)

// TestNoEvictionWhenUnreachable: a pod that tolerates an unreachable node
// for only 5 s stays bound, with its UID, while its node's link is cut and
// the node carries the unreachable NoExecute taint; once the node opts in
// (annotation, which --evict-when-unreachable sets) the same outage evicts it.
func TestNoEvictionWhenUnreachable(t *testing.T) {
	kedge := harness.Binary(t)
	net := hosts.NewNetwork(t)
	srvHost, h1, h2 := net.AddHost(t, "server"), net.AddHost(t, "edge1"), net.AddHost(t, "edge2")
	stageTestImage(t, h1)
	// A shorter grace period only makes the test faster; upstream's default is 50 s.
	srv, args := startServer(t, kedge, srvHost, "--kube-controller-manager-arg", "node-monitor-grace-period=20s")
	a1 := h1.Start(t, args...)
	a2 := h2.Start(t, append(args, "--evict-when-unreachable")...)
	procs := []*hosts.Proc{srv, a1, a2}
	admin := adminClient(t, srvHost)
	ctx := t.Context()
	for _, n := range []string{"server", "edge1", "edge2"} {
		waitNodeReady(t, admin, n, procs)
	}
	// The agent flag records the node's choice.
	waitFor(t, 30*time.Second, "edge2's eviction annotation from --evict-when-unreachable", procs, func() bool {
		n, err := admin.CoreV1().Nodes().Get(ctx, "edge2", metav1.GetOptions{})
		return err == nil && n.Annotations[tainteviction.EvictWhenUnreachable] == "true"
	})

	five := int64(5)
	pod := testPod("steady", "edge1")
	pod.Spec.Tolerations = []corev1.Toleration{{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists,
		Effect: corev1.TaintEffectNoExecute, TolerationSeconds: &five}}
	if _, err := admin.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	running := waitPodRunning(t, admin, "steady", procs)
	uid, podIP := running.UID, running.Status.PodIP

	unreachable := func() bool {
		n, err := admin.CoreV1().Nodes().Get(ctx, "edge1", metav1.GetOptions{})
		return err == nil && slices.ContainsFunc(n.Spec.Taints, func(tn corev1.Taint) bool {
			return tn.Key == corev1.TaintNodeUnreachable && tn.Effect == corev1.TaintEffectNoExecute
		})
	}
	samePod := func() bool {
		p, err := admin.CoreV1().Pods("default").Get(ctx, "steady", metav1.GetOptions{})
		return err == nil && p.UID == uid && p.DeletionTimestamp == nil
	}

	cut(t, h1, false)
	t.Cleanup(func() { cut(t, h1, true) })
	waitFor(t, 120*time.Second, "edge1 tainted unreachable:NoExecute", procs, unreachable)
	// Three times the toleration: upstream would have evicted the pod by now.
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if !samePod() {
			t.Fatal("the pod of an unreachable node was evicted, although the node did not opt in")
		}
		time.Sleep(500 * time.Millisecond) // sampling a window in which nothing may happen
	}
	// Inside the cut-off host the pod kept serving all along.
	if got := curlFrom(h1, "http://"+podIP+":8080/"); got != "hello from steady\n" {
		t.Fatalf("the pod did not serve inside the cut-off host: %q", got)
	}
	cut(t, h1, true)
	waitNodeReady(t, admin, "edge1", procs)
	waitFor(t, 60*time.Second, "the same pod Running after the outage", procs, func() bool {
		p, err := admin.CoreV1().Pods("default").Get(ctx, "steady", metav1.GetOptions{})
		return err == nil && p.UID == uid && p.Status.Phase == corev1.PodRunning
	})

	// The node opts in: the next outage evicts the pod once its toleration ends.
	patch := []byte(`{"metadata":{"annotations":{"` + tainteviction.EvictWhenUnreachable + `":"true"}}}`)
	if _, err := admin.CoreV1().Nodes().Patch(ctx, "edge1", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	cut(t, h1, false)
	waitFor(t, 120*time.Second, "edge1 tainted unreachable:NoExecute again", procs, unreachable)
	waitFor(t, 60*time.Second, "the opted-in node's pod evicted", procs, func() bool {
		_, err := admin.CoreV1().Pods("default").Get(ctx, "steady", metav1.GetOptions{})
		return apierrors.IsNotFound(err) || !samePod()
	})
	cut(t, h1, true)
	for _, p := range []*hosts.Proc{a1, a2, srv} {
		if err := p.Stop(20 * time.Second); err != nil {
			t.Fatalf("stop: %v\n%s", err, p.Output())
		}
	}
}

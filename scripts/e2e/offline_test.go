package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kedge/kedge/scripts/e2e/hosts"
	"github.com/kedge/kedge/server/integration/harness"
)

// TestAgentThroughOutages cuts an agent's link for real and, while it is
// cut: the pod keeps serving and its Service answers inside the host; a
// container that dies is restarted; the agent process restarts and the pod
// keeps its container; the device reboots (every process killed, /run and
// run-time network state gone) and the agent brings the pod back from its
// cache, with its Secret, ConfigMap and ServiceAccount token, without a
// server. When the link returns the node is Ready with the same pod (UID),
// nothing recreated. Then the server restarts: the agent reconnects and
// none of its containers restarts.
func TestAgentThroughOutages(t *testing.T) {
	kedge := harness.Binary(t)
	net := hosts.NewNetwork(t)
	srvHost, edge := net.AddHost(t, "server"), net.AddHost(t, "edge")
	stageTestImage(t, edge)
	srv, agentArgs := startServer(t, kedge, srvHost)
	agent := edge.Start(t, agentArgs...)
	admin := adminClient(t, srvHost)
	ctx := t.Context()
	waitNodeReady(t, admin, "edge", []*hosts.Proc{srv, agent})

	// A pod that needs the API to start: a Secret volume, a ConfigMap
	// variable and (by default) a projected ServiceAccount token.
	if _, err := admin.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "shop"},
		StringData: map[string]string{"till": "42"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "shop"},
		Data: map[string]string{"store": "12"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := testPod("till", "edge")
	pod.Spec.Volumes = []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "shop"}}}}
	c := &pod.Spec.Containers[0]
	c.VolumeMounts = []corev1.VolumeMount{{Name: "s", MountPath: "/s"}}
	c.Env = []corev1.EnvVar{{Name: "STORE", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: "shop"}, Key: "store"}}}}
	if _, err := admin.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	running := waitPodRunning(t, admin, "till", []*hosts.Proc{srv, agent})
	uid, podIP := running.UID, running.Status.PodIP
	svc, err := admin.CoreV1().Services("default").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "till"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "till"}, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}}},
		metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	serves := func(url string) func() bool {
		return func() bool { return curlFrom(edge, url) == "hello from till\n" }
	}
	waitFor(t, 60*time.Second, "the Service inside the edge host", []*hosts.Proc{srv, agent}, serves("http://"+svc.Spec.ClusterIP+"/"))
	// The agent's cache on disk holds what the pod needs: its ServiceAccount
	// token and the node's pod list with the pod running.
	waitFor(t, 30*time.Second, "the agent's API cache on disk", []*hosts.Proc{agent}, func() bool {
		token, pods := false, false
		files, _ := filepath.Glob(filepath.Join(edge.Root, "var/lib/kedge/agent/cache/*.json"))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			s := string(b)
			token = token || strings.Contains(s, "/serviceaccounts/default/token")
			pods = pods || strings.Contains(s, "spec.nodeName") && strings.Contains(s, `"name":"till"`) && strings.Contains(s, `"phase":"Running"`)
		}
		return token && pods
	})

	cut(t, edge, false)
	t.Cleanup(func() { cut(t, edge, true) })
	procs := []*hosts.Proc{agent}
	waitFor(t, 30*time.Second, "the agent's upstream to fail with the link cut", procs, func() bool { return !upstreamAnswers(edge) })
	if got := curlFrom(edge, "http://"+podIP+":8080/"); got != "hello from till\n" {
		t.Fatalf("the pod answered %q inside the host when the link was cut", got)
	}
	if got := curlFrom(edge, "http://"+svc.Spec.ClusterIP+"/"); got != "hello from till\n" {
		t.Fatalf("the Service answered %q inside the host when the link was cut", got)
	}
	// A container that dies is restarted by the kubelet, offline.
	if out := curlPost(edge, "http://"+podIP+":8080/exit"); out != "bye" {
		t.Fatalf("POST /exit: %q", out)
	}
	waitFor(t, 60*time.Second, "the died container restarted offline", procs, func() bool {
		return len(crictl(t, edge, kedge, "ps", "-a", "-q", "--name", "web")) >= 2 && serves("http://"+podIP+":8080/")()
	})
	// The agent process restarts offline; the pod keeps its container.
	before := crictl(t, edge, kedge, "ps", "-q", "--name", "web")
	if err := agent.Stop(20 * time.Second); err != nil {
		t.Fatalf("agent stop: %v\n%s", err, agent.Output())
	}
	agent = edge.Start(t, agentArgs...)
	procs = []*hosts.Proc{agent}
	waitFor(t, 90*time.Second, "the agent ready again offline", procs, agent.Ready)
	// The Node was initialized (uninitialized taint removed) before the
	// link was cut; the cached Node says so, and kube-proxy does not wait.
	if strings.Contains(agent.Output(), "not initialized by the server's cloud node controller") {
		t.Errorf("an agent restarting offline waited for its Node to be initialized:\n%s", agent.Output())
	}
	if after := crictl(t, edge, kedge, "ps", "-q", "--name", "web"); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Fatalf("the pod's container changed across an offline agent restart: %v -> %v\nagent:\n%s", before, after, agent.Output())
	}
	waitFor(t, 30*time.Second, "the pod serving after an offline agent restart", procs, serves("http://"+podIP+":8080/"))

	// A reboot while cut off: the agent brings the pod back from its cache.
	if err := agent.Stop(20 * time.Second); err != nil {
		t.Fatalf("agent stop: %v\n%s", err, agent.Output())
	}
	edge.Reboot(t)
	boot := time.Now()
	agent = edge.Start(t, agentArgs...)
	procs = []*hosts.Proc{agent}
	var newIP string
	waitFor(t, 60*time.Second, "the pod running again after an offline reboot", procs, func() bool {
		ids := crictl(t, edge, kedge, "pods", "-q", "--name", "till", "--state", "ready")
		if len(ids) != 1 {
			return false
		}
		newIP = sandboxIP(t, edge, kedge, ids[0])
		return newIP != "" && serves("http://"+newIP+":8080/")()
	})
	t.Logf("offline boot: agent start to the pod serving again: %.1fs", time.Since(boot).Seconds())
	if got := curlFrom(edge, "http://"+newIP+":8080/env?k=STORE"); got != "12" {
		t.Fatalf("after the offline reboot, STORE=%q, want the ConfigMap's 12", got)
	}
	if got := curlFrom(edge, "http://"+newIP+":8080/file?p=/s/till"); got != "42" {
		t.Fatalf("after the offline reboot, the Secret volume holds %q, want 42", got)
	}
	if got := curlFrom(edge, "http://"+newIP+":8080/file?p=/var/run/secrets/kubernetes.io/serviceaccount/namespace"); got != "default" {
		t.Fatalf("after the offline reboot, the ServiceAccount volume holds %q", got)
	}

	// The link returns: the same pod, Ready, reporting its new IP.
	cut(t, edge, true)
	procs = []*hosts.Proc{srv, agent}
	waitNodeReady(t, admin, "edge", procs)
	waitFor(t, 60*time.Second, "the pod's status from after the reboot", procs, func() bool {
		p, err := admin.CoreV1().Pods("default").Get(ctx, "till", metav1.GetOptions{})
		return err == nil && p.UID == uid && p.Status.Phase == corev1.PodRunning && p.Status.PodIP == newIP
	})
	waitFor(t, 60*time.Second, "the Service again after the link returned", procs, serves("http://"+svc.Spec.ClusterIP+"/"))
	list, err := admin.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("pods after the outage: %d (%v), want the one pod", len(list.Items), err)
	}

	// The server restarts: the agent reconnects and nothing on it restarts.
	before = crictl(t, edge, kedge, "ps", "-q")
	if err := srv.Stop(20 * time.Second); err != nil {
		t.Fatalf("server stop: %v\n%s", err, srv.Output())
	}
	srv = srvHost.Start(t, kedge, "server")
	procs = []*hosts.Proc{srv, agent}
	waitForServer(t, srvHost, srv)
	restarted := time.Now()
	waitFor(t, 90*time.Second, "the node's Lease renewed through the restarted server", procs, func() bool {
		l, err := admin.CoordinationV1().Leases("kube-node-lease").Get(ctx, "edge", metav1.GetOptions{})
		return err == nil && l.Spec.RenewTime != nil && l.Spec.RenewTime.After(restarted)
	})
	waitNodeReady(t, admin, "edge", procs)
	if after := crictl(t, edge, kedge, "ps", "-q"); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Fatalf("containers on the agent changed across a server restart: %v -> %v", before, after)
	}
	if _, done := agent.Exited(); done {
		t.Fatalf("the agent exited while the server restarted:\n%s", agent.Output())
	}
	for _, p := range []*hosts.Proc{agent, srv} {
		if err := p.Stop(20 * time.Second); err != nil {
			t.Fatalf("stop: %v\n%s", err, p.Output())
		}
	}
}

// crictl runs `kedge crictl args...` in host h and returns its output lines.
func crictl(t *testing.T, h *hosts.Host, kedge string, args ...string) []string {
	t.Helper()
	p := h.Start(t, append([]string{kedge, "crictl"}, args...)...)
	waitFor(t, 30*time.Second, "kedge crictl "+strings.Join(args, " "), nil, func() bool { _, done := p.Exited(); return done })
	if err, _ := p.Exited(); err != nil {
		return nil // containerd not serving yet, for example
	}
	return strings.Fields(p.Output())
}

// sandboxIP is the IP of pod sandbox id, from crictl inspectp.
func sandboxIP(t *testing.T, h *hosts.Host, kedge, id string) string {
	t.Helper()
	p := h.Start(t, kedge, "crictl", "inspectp", id)
	waitFor(t, 30*time.Second, "kedge crictl inspectp", nil, func() bool { _, done := p.Exited(); return done })
	var out struct {
		Status struct {
			Network struct {
				IP string `json:"ip"`
			} `json:"network"`
		} `json:"status"`
	}
	if err, _ := p.Exited(); err != nil || json.Unmarshal([]byte(p.Output()), &out) != nil {
		return ""
	}
	return out.Status.Network.IP
}

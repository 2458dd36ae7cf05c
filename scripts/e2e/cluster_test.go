package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	cloudproviderapi "k8s.io/cloud-provider/api"

	"github.com/kedge/kedge/scripts/e2e/hosts"
	"github.com/kedge/kedge/server/integration/harness"
)

// TestClusterAcrossHosts: a server (which is a node too) and two agents on
// three hosts. Nodes carry their labels and taints; a Deployment spreads
// over them; pods reach pods on other nodes over vxlan; a ClusterIP Service
// answers from another node (one agent runs kube-proxy in iptables mode);
// a NodePort and a LoadBalancer Service answer from outside on every node's
// IP; `kedge kubectl logs`
// and `exec` reach pods on agents; a node's credentials cannot read
// another node's pods' secrets; restarting an agent keeps its pods.
func TestClusterAcrossHosts(t *testing.T) {
	kedge := harness.Binary(t)
	net := hosts.NewNetwork(t)
	srvHost, h1, h2 := net.AddHost(t, "server"), net.AddHost(t, "agent1"), net.AddHost(t, "agent2")
	for _, h := range []*hosts.Host{srvHost, h1, h2} {
		stageTestImage(t, h)
	}
	srv, join := startServer(t, kedge, srvHost)
	agentArgs := func(extra ...string) []string { return append(slices.Clone(join), extra...) }
	a1 := h1.Start(t, agentArgs("--node-label", "site=shop-12", "--node-taint", "dedicated=edge:PreferNoSchedule",
		"--kubelet-arg", "max-pods=50", "--kube-proxy-arg", "proxy-mode=iptables", "--node-external-ip", "203.0.113.7")...)
	a2 := h2.Start(t, agentArgs()...)
	procs := []*hosts.Proc{srv, a1, a2}
	admin := adminClient(t, srvHost)
	ctx := t.Context()
	for _, n := range []string{"server", "agent1", "agent2"} {
		waitNodeReady(t, admin, n, procs)
	}
	node, err := admin.CoreV1().Nodes().Get(ctx, "agent1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if node.Labels["site"] != "shop-12" {
		t.Errorf("agent1 labels = %v, want site=shop-12", node.Labels)
	}
	if !slices.ContainsFunc(node.Spec.Taints, func(tn corev1.Taint) bool {
		return tn.Key == "dedicated" && tn.Value == "edge" && tn.Effect == corev1.TaintEffectPreferNoSchedule
	}) {
		t.Errorf("agent1 taints = %v, want dedicated=edge:PreferNoSchedule among them", node.Spec.Taints)
	}
	if pods := node.Status.Capacity[corev1.ResourcePods]; pods.Value() != 50 {
		t.Errorf("agent1 pod capacity = %v, want 50", pods.String())
	}

	// Addresses: the kubelets run with --cloud-provider=external and the
	// server's cloud node controller sets them from the agents' annotations.
	wantAddrs := map[string][]corev1.NodeAddress{
		"server": {{Type: corev1.NodeInternalIP, Address: srvHost.IP}, {Type: corev1.NodeHostName, Address: "server"}},
		"agent1": {{Type: corev1.NodeInternalIP, Address: h1.IP}, {Type: corev1.NodeExternalIP, Address: "203.0.113.7"},
			{Type: corev1.NodeHostName, Address: "agent1"}},
		"agent2": {{Type: corev1.NodeInternalIP, Address: h2.IP}, {Type: corev1.NodeHostName, Address: "agent2"}},
	}
	for name, want := range wantAddrs {
		var got *corev1.Node
		settled := func() bool {
			n, err := admin.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false
			}
			got = n
			return slices.Equal(n.Status.Addresses, want) && n.Spec.ProviderID == "kedge://"+name &&
				!slices.ContainsFunc(n.Spec.Taints, func(tn corev1.Taint) bool { return tn.Key == cloudproviderapi.TaintExternalCloudProvider })
		}
		for deadline := time.Now().Add(30 * time.Second); !settled() && time.Now().Before(deadline); {
			time.Sleep(200 * time.Millisecond)
		}
		if !settled() {
			if got == nil {
				t.Fatalf("cannot get node %s", name)
			}
			t.Fatalf("node %s: addresses %v (want %v), taints %v, provider ID %q (want kedge://%s)",
				name, got.Status.Addresses, want, got.Spec.Taints, got.Spec.ProviderID, name)
		}
	}

	// Six replicas, at most one apart per node: two on each.
	replicas := int32(6)
	labels := map[string]string{"app": "web"}
	_, err = admin.AppsV1().Deployments("default").Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: "web", Image: "kedge.local/testimage:1", ImagePullPolicy: corev1.PullNever}},
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
						MaxSkew: 1, TopologyKey: corev1.LabelHostname, WhenUnsatisfiable: corev1.DoNotSchedule,
						LabelSelector: &metav1.LabelSelector{MatchLabels: labels},
					}},
				},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var pods []corev1.Pod
	waitFor(t, 120*time.Second, "6 web pods Running", procs, func() bool {
		list, err := admin.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return false
		}
		pods = nil
		for _, p := range list.Items {
			if p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" && p.DeletionTimestamp == nil {
				pods = append(pods, p)
			}
		}
		return len(pods) == 6
	})
	byNode := map[string][]corev1.Pod{}
	for _, p := range pods {
		byNode[p.Spec.NodeName] = append(byNode[p.Spec.NodeName], p)
	}
	for _, n := range []string{"server", "agent1", "agent2"} {
		if len(byNode[n]) != 2 {
			t.Fatalf("pods per node = %v, want 2 on each node", countByNode(byNode))
		}
	}

	// Pod to pod across every pair of nodes (vxlan), from inside the pods.
	k := kubectlOn(kedge, srvHost)
	for from, fromPods := range byNode {
		for to, toPods := range byNode {
			if from == to {
				continue
			}
			src, dst := fromPods[0], toPods[0]
			want := "hello from " + dst.Name + "\n"
			waitFor(t, 30*time.Second, fmt.Sprintf("pod on %s to reach pod on %s", from, to), procs, func() bool {
				out, _ := k("exec", src.Name, "--", "/testimage", "get", "http://"+dst.Status.PodIP+":8080/")
				return out == want
			})
		}
	}

	// A ClusterIP Service from a pod on agent1 (kube-proxy in iptables
	// mode) and from agent2's host (nftables mode): both reach pods on
	// other nodes.
	svc, err := admin.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Selector: labels, Type: corev1.ServiceTypeNodePort,
			Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	answers := func(body string) bool { return strings.HasPrefix(body, "hello from web-") }
	seen := map[string]bool{}
	waitFor(t, 60*time.Second, "the ClusterIP Service from a pod on agent1 to answer from every node", procs, func() bool {
		out, _ := k("exec", byNode["agent1"][0].Name, "--", "/testimage", "get", "http://"+svc.Spec.ClusterIP+"/")
		if answers(out) {
			seen[nodeOfPod(pods, strings.TrimSpace(strings.TrimPrefix(out, "hello from ")))] = true
		}
		return len(seen) == 3
	})
	waitFor(t, 60*time.Second, "the ClusterIP Service from agent2's host", procs, func() bool {
		return answers(curlFrom(h2, "http://"+svc.Spec.ClusterIP+"/"))
	})
	// NodePort from outside the cluster (the test's own side of the bridge).
	nodePort := svc.Spec.Ports[0].NodePort
	for _, h := range []*hosts.Host{srvHost, h1, h2} {
		waitFor(t, 60*time.Second, "NodePort on "+h.Name, procs, func() bool {
			out, err := exec.Command("curl", "-s", "--max-time", "3", fmt.Sprintf("http://%s:%d/", h.IP, nodePort)).Output()
			return err == nil && answers(string(out))
		})
	}

	// A LoadBalancer Service gets every node's addresses (agent1's external
	// one too) and answers on its port at each node's IP, through
	// kube-proxy in both modes.
	lbSvc, err := admin.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web-lb"},
		Spec: corev1.ServiceSpec{Selector: labels, Type: corev1.ServiceTypeLoadBalancer,
			Ports: []corev1.ServicePort{{Port: 8081, TargetPort: intstr.FromInt32(8080)}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantIngress := []string{srvHost.IP, h1.IP, "203.0.113.7", h2.IP}
	waitFor(t, 60*time.Second, "web-lb ingress "+strings.Join(wantIngress, ","), procs, func() bool {
		s, err := admin.CoreV1().Services("default").Get(ctx, lbSvc.Name, metav1.GetOptions{})
		if err != nil {
			return false
		}
		var got []string
		for _, in := range s.Status.LoadBalancer.Ingress {
			got = append(got, in.IP)
		}
		slices.Sort(got)
		want := slices.Sorted(slices.Values(wantIngress))
		return slices.Equal(got, want)
	})
	for _, h := range []*hosts.Host{srvHost, h1, h2} {
		waitFor(t, 60*time.Second, "LoadBalancer port on "+h.Name, procs, func() bool {
			out, err := exec.Command("curl", "-s", "--max-time", "3", fmt.Sprintf("http://%s:8081/", h.IP)).Output()
			return err == nil && answers(string(out))
		})
	}

	// Logs through the apiserver and the kubelet of agent2.
	onAgent2 := byNode["agent2"][0]
	if out, err := k("logs", onAgent2.Name); err != nil || !strings.Contains(out, "testimage listening on :8080") {
		t.Fatalf("kedge kubectl logs %s: %v\n%s", onAgent2.Name, err, out)
	}

	// NodeRestriction: agent1's kubelet identity may read a Secret that a
	// pod on agent1 mounts, not one that only a pod on agent2 mounts.
	for _, s := range []struct{ secret, node string }{{"for-agent1", "agent1"}, {"for-agent2", "agent2"}} {
		if _, err := admin.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: s.secret}, StringData: map[string]string{"k": "v"},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		p := testPod("uses-"+s.secret, s.node)
		p.Spec.Volumes = []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: s.secret}}}}
		p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "s", MountPath: "/s"}}
		if _, err := admin.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitPodRunning(t, admin, "uses-for-agent1", procs)
	node1 := nodeClient(t, h1, srvHost)
	if _, err := node1.CoreV1().Secrets("default").Get(ctx, "for-agent1", metav1.GetOptions{}); err != nil {
		t.Fatalf("agent1 cannot read the secret of its own pod: %v", err)
	}
	if _, err := node1.CoreV1().Secrets("default").Get(ctx, "for-agent2", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("agent1 reading another node's pod's secret: err = %v, want Forbidden", err)
	}

	// Restarting agent2's process keeps its pods: same containers, no restarts.
	before := containersOn(t, admin, "agent2")
	if err := a2.Stop(20 * time.Second); err != nil {
		t.Fatalf("agent2 stop: %v\n%s", err, a2.Output())
	}
	a2 = h2.Start(t, agentArgs()...)
	procs = []*hosts.Proc{srv, a1, a2}
	waitFor(t, 60*time.Second, "agent2 ready again", procs, a2.Ready)
	waitNodeReady(t, admin, "agent2", procs)
	if after := containersOn(t, admin, "agent2"); !equalMaps(before, after) {
		t.Fatalf("agent2's containers changed across an agent restart:\nbefore %v\nafter  %v", before, after)
	}
	if got := curlFrom(h2, "http://"+onAgent2.Status.PodIP+":8080/"); got != "hello from "+onAgent2.Name+"\n" {
		t.Fatalf("a pod on agent2 answered %q after the agent restart", got)
	}
	for _, p := range []*hosts.Proc{a1, a2, srv} {
		if err := p.Stop(20 * time.Second); err != nil {
			t.Fatalf("stop: %v\n%s", err, p.Output())
		}
	}
}

// kubectlOn returns a runner of `kedge kubectl` against the server host.
func kubectlOn(kedge string, srvHost *hosts.Host) func(args ...string) (string, error) {
	kubeconfig := filepath.Join(srvHost.Root, "etc/kedge/kedge.yaml")
	return func(args ...string) (string, error) {
		all := append([]string{"kubectl", "--kubeconfig", kubeconfig, "--server", "https://" + srvHost.IP + ":6443", "--request-timeout", "10s"}, args...)
		out, err := exec.Command(kedge, all...).Output()
		return string(out), err
	}
}

// nodeClient is a client with the kubelet credentials of the agent host h.
func nodeClient(t *testing.T, h, srvHost *hosts.Host) kubernetes.Interface {
	t.Helper()
	cred := filepath.Join(h.Root, "var/lib/kedge/agent/cred")
	return kubernetes.NewForConfigOrDie(&rest.Config{Host: "https://" + srvHost.IP + ":6443", TLSClientConfig: rest.TLSClientConfig{
		CAFile:   filepath.Join(cred, "server-ca.crt"),
		CertFile: filepath.Join(cred, "kubelet-client.crt"), KeyFile: filepath.Join(cred, "kubelet-client.key"),
	}})
}

// containersOn maps each container of the pods on node to "ID restarts".
func containersOn(t *testing.T, c kubernetes.Interface, node string) map[string]string {
	t.Helper()
	list, err := c.CoreV1().Pods("").List(t.Context(), metav1.ListOptions{FieldSelector: "spec.nodeName=" + node})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range list.Items {
		for _, cs := range p.Status.ContainerStatuses {
			out[p.Name+"/"+cs.Name] = fmt.Sprintf("%s %s restarts=%d", p.UID, cs.ContainerID, cs.RestartCount)
		}
	}
	return out
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func countByNode(byNode map[string][]corev1.Pod) map[string]int {
	out := map[string]int{}
	for n, ps := range byNode {
		out[n] = len(ps)
	}
	return out
}

func nodeOfPod(pods []corev1.Pod, name string) string {
	for _, p := range pods {
		if p.Name == name {
			return p.Spec.NodeName
		}
	}
	return ""
}

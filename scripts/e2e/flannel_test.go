package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agentproxy "github.com/kedge/kedge/agent/node/proxy"
	"github.com/kedge/kedge/scripts/e2e/hosts"
	"github.com/kedge/kedge/server/integration/harness"
)

const flannelPrefix = "flannel.alpha.coreos.com/"

// TestPodTrafficAcrossNodes: a server without an agent and two agents;
// flannel (vxlan) on each agent gives its node a subnet and publishes its
// VTEP on the Node; a pod on agent 1 and agent 1's host reach a pod on
// agent 2 over the overlay, and pod-to-pod traffic keeps the pod's source
// IP (no masquerade inside the cluster network).
func TestPodTrafficAcrossNodes(t *testing.T) {
	kedge := harness.Binary(t)
	net := hosts.NewNetwork(t)
	srvHost := net.AddHost(t, "server")
	srv := srvHost.Start(t, kedge, "server", "--disable-agent")
	waitForServer(t, srvHost, srv)
	tokenBytes, err := os.ReadFile(filepath.Join(srvHost.Root, "var/lib/kedge/server/token"))
	if err != nil {
		t.Fatal(err)
	}
	image := filepath.Join(t.TempDir(), "testimage.tar")
	buildTestImage(t, image)
	admin := adminClient(t, srvHost)
	ctx := t.Context()

	var agentHosts []*hosts.Host
	procs := []*hosts.Proc{srv}
	start := time.Now()
	for _, name := range []string{"agent1", "agent2"} {
		h := net.AddHost(t, name)
		imagesDir := filepath.Join(h.Root, "var/lib/kedge/agent/images")
		if err := os.MkdirAll(imagesDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := copyFile(image, filepath.Join(imagesDir, "testimage.tar")); err != nil {
			t.Fatal(err)
		}
		agentHosts = append(agentHosts, h)
		procs = append(procs, h.Start(t, kedge, "agent", "--server", "https://"+srvHost.IP+":6443", "--token", strings.TrimSpace(string(tokenBytes))))
	}
	for i, h := range agentHosts {
		waitFor(t, 120*time.Second, h.Name+" ready", procs, procs[i+1].Ready)
	}
	t.Logf("two agents ready with flannel in %.1fs", time.Since(start).Seconds())

	// Each node published its own VTEP: distinct public IPs (the hosts'
	// addresses), distinct VTEP MACs, distinct pod subnets.
	seen := map[string]string{}
	for _, h := range agentHosts {
		n, err := admin.CoreV1().Nodes().Get(ctx, h.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		a := n.Annotations
		if a[flannelPrefix+"public-ip"] != h.IP || a[flannelPrefix+"backend-type"] != "vxlan" || a[flannelPrefix+"kube-subnet-manager"] != "true" {
			t.Fatalf("%s: flannel annotations %v, want public-ip %s, vxlan", h.Name, a, h.IP)
		}
		var vtep struct {
			VNI     int
			VtepMAC string
		}
		if err := json.Unmarshal([]byte(a[flannelPrefix+"backend-data"]), &vtep); err != nil || vtep.VNI != 1 || vtep.VtepMAC == "" {
			t.Fatalf("%s: backend-data %q (%v)", h.Name, a[flannelPrefix+"backend-data"], err)
		}
		for _, v := range []string{a[flannelPrefix+"public-ip"], vtep.VtepMAC, n.Spec.PodCIDR} {
			if other, dup := seen[v]; dup {
				t.Fatalf("%s and %s share %s", other, h.Name, v)
			}
			seen[v] = h.Name
		}
		// The CNI config comes from the lease: the node's subnet, vxlan MTU, no masquerade.
		conf, err := os.ReadFile(filepath.Join(h.Root, "var/lib/kedge/agent/etc/cni/net.d/10-kedge.conflist"))
		if err != nil || !strings.Contains(string(conf), `"subnet": "`+n.Spec.PodCIDR+`"`) ||
			!strings.Contains(string(conf), `"mtu": 1450`) || !strings.Contains(string(conf), `"ipMasq": false`) {
			t.Fatalf("%s: conflist (%v):\n%s", h.Name, err, conf)
		}
	}

	pods := make([]*corev1.Pod, len(agentHosts))
	for i, h := range agentHosts {
		name := fmt.Sprintf("web-%s-%d", net.ID, i+1)
		_, err := admin.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{NodeName: h.Name, Containers: []corev1.Container{{
				Name: "web", Image: "kedge.local/testimage:1", ImagePullPolicy: corev1.PullNever,
			}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, 90*time.Second, name+" Running", procs, func() bool {
			pods[i], err = admin.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
			return err == nil && pods[i].Status.Phase == corev1.PodRunning && pods[i].Status.PodIP != ""
		})
	}
	remote := "http://" + pods[1].Status.PodIP + ":8080/"
	want := "hello from " + pods[1].Name + "\n"

	// Agent 1's host routes agent 2's subnet over the vxlan device.
	route, err := exec.Command("ip", "-n", agentHosts[0].NS, "route", "get", pods[1].Status.PodIP).CombinedOutput()
	if err != nil || !strings.Contains(string(route), "dev flannel.1") {
		t.Fatalf("route to the pod on agent2: %s (%v)", route, err)
	}
	// Agent 1's host reaches the pod on agent 2.
	var out []byte
	reached := time.Now()
	waitFor(t, 30*time.Second, "agent1's host to reach the pod on agent2", procs, func() bool {
		out, err = exec.Command("ip", "netns", "exec", agentHosts[0].NS, "curl", "-s", "--max-time", "2", remote).CombinedOutput()
		return err == nil && string(out) == want
	})
	t.Logf("host agent1 -> pod %s on agent2: %q after %.1fs", pods[1].Status.PodIP, out, time.Since(reached).Seconds())

	// The pod on agent 1 reaches it too, and is seen with its own IP.
	pid := podPID(t, pods[0].Name)
	inPod := func(url string) ([]byte, error) {
		return exec.Command("nsenter", "-t", strconv.Itoa(pid), "-n", "curl", "-s", "--max-time", "2", url).CombinedOutput()
	}
	waitFor(t, 30*time.Second, "the pod on agent1 to reach the pod on agent2", procs, func() bool {
		out, err = inPod(remote)
		return err == nil && string(out) == want
	})
	t.Logf("pod %s on agent1 -> pod on agent2: %q", pods[0].Status.PodIP, out)
	if out, err = inPod(remote + "peer"); err != nil || string(out) != pods[0].Status.PodIP {
		t.Fatalf("the pod on agent2 saw the client as %q (%v), want pod IP %s", out, err, pods[0].Status.PodIP)
	}
	// And back: agent 2's pod reaches agent 1's.
	back := "http://" + pods[0].Status.PodIP + ":8080/"
	waitFor(t, 30*time.Second, "agent2's host to reach the pod on agent1", procs, func() bool {
		out, err = exec.Command("ip", "netns", "exec", agentHosts[1].NS, "curl", "-s", "--max-time", "2", back).CombinedOutput()
		return err == nil && string(out) == "hello from "+pods[0].Name+"\n"
	})

	// With the server down, agent 1 restarts and flannel is ready at once
	// from the conflist of the earlier run, and the overlay it left in
	// place keeps carrying traffic; when the server is back, flannel takes
	// the node's lease again with the same VTEP. (The agent as a whole is
	// not ready offline: kube-proxy waits for a first sync.)
	before, err := admin.CoreV1().Nodes().Get(ctx, agentHosts[0].Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(15 * time.Second); err != nil {
		t.Fatalf("server stop: %v\n%s", err, srv.Output())
	}
	if err := procs[1].Stop(15 * time.Second); err != nil {
		t.Fatalf("agent1 stop: %v\n%s", err, procs[1].Output())
	}
	offline := time.Now()
	a1 := agentHosts[0].Start(t, kedge, "agent", "--server", "https://"+srvHost.IP+":6443", "--token", strings.TrimSpace(string(tokenBytes)))
	// The agent starts its components in order, each once the one before
	// is ready: kube-proxy (after flannel and the node's addresses) serves
	// its healthz, 503 until a first sync, only once flannel is ready.
	waitFor(t, 60*time.Second, "flannel on agent1 ready with the server down (kube-proxy's healthz up)", []*hosts.Proc{a1}, func() bool {
		return httpCodeFrom(agentHosts[0], "http://"+agentproxy.HealthzAddress+"/healthz") != "000"
	})
	t.Logf("agent1 restarted with the server down: flannel ready in %.1fs", time.Since(offline).Seconds())
	if out, err = exec.Command("ip", "netns", "exec", agentHosts[0].NS, "curl", "-s", "--max-time", "2", remote).CombinedOutput(); err != nil || string(out) != want {
		t.Fatalf("with the server down, agent1's host got %q (%v) from the pod on agent2", out, err)
	}
	srv = srvHost.Start(t, kedge, "server", "--disable-agent")
	waitForServer(t, srvHost, srv)
	procs = []*hosts.Proc{srv, a1, procs[2]}
	// READY=1 comes after every component, flannel too, is ready.
	waitFor(t, 120*time.Second, "agent1 ready with flannel's lease after the server is back", procs, a1.Ready)
	after, err := admin.CoreV1().Nodes().Get(ctx, agentHosts[0].Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if b, a := before.Annotations[flannelPrefix+"backend-data"], after.Annotations[flannelPrefix+"backend-data"]; a != b {
		t.Errorf("agent1's VTEP changed across the restart: %s -> %s", b, a)
	}
	waitFor(t, 30*time.Second, "the pod on agent1 to reach the pod on agent2 after the restarts", procs, func() bool {
		out, err = inPod(remote)
		return err == nil && string(out) == want
	})

	for _, p := range pods {
		_ = admin.CoreV1().Pods("default").Delete(ctx, p.Name, metav1.DeleteOptions{})
	}
	for i := len(procs) - 1; i >= 0; i-- {
		if err := procs[i].Stop(15 * time.Second); err != nil {
			t.Fatalf("stop: %v\n%s", err, procs[i].Output())
		}
	}
}

// podPID finds the process of the test image container whose hostname
// (its pod's name, unique to this test) is name.
func podPID(t *testing.T, name string) int {
	t.Helper()
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(comm)) != "testimage" {
			continue
		}
		env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		for _, kv := range bytes.Split(env, []byte{0}) {
			if string(kv) == "HOSTNAME="+name {
				return pid
			}
		}
	}
	t.Fatalf("no testimage process for pod %s", name)
	return 0
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o600)
}

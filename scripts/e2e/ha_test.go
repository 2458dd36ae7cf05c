package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kedge/kedge/scripts/e2e/hosts"
	"github.com/kedge/kedge/server/integration/harness"
	"github.com/kedge/kedge/server/pki"
	"github.com/kedge/kedge/shared/token"
)

// TestServersJoinEmbeddedEtcd runs three servers on three hosts: the first
// with --cluster-init, two joining it with the server token. An agent token
// cannot join a server; writes on one server are read on the others; etcd
// has three voting members. With the first server (and controllers leader)
// stopped, the other two serve reads and writes, drop it from the
// kubernetes endpoints and take over the controllers; started again from
// its data, it catches up with what was written meanwhile. A joined server
// restarts from its local data without joining again. When the controllers
// leader crashes, another server takes over after the lease expires and the
// crashed one drops out of the endpoints. The agent keeps a reverse tunnel
// to each server, so logs and exec of its pod work through every server
// with no inbound connection to its kubelet, also through server 1 once it
// is back.
func TestServersJoinEmbeddedEtcd(t *testing.T) {
	kedge := harness.Binary(t)
	net := hosts.NewNetwork(t)
	h1, h2, h3 := net.AddHost(t, "server1"), net.AddHost(t, "server2"), net.AddHost(t, "server3")
	const agentSecret = harness.AgentSecret
	var started []*hosts.Proc
	var names []string
	start := func(h *hosts.Host, args ...string) *hosts.Proc {
		p := h.Start(t, append([]string{kedge}, args...)...)
		started, names = append(started, p), append(names, h.Name)
		return p
	}
	// KEDGE_E2E_LOGS=dir keeps every server's output of a failed run.
	t.Cleanup(func() {
		if dir := os.Getenv("KEDGE_E2E_LOGS"); dir != "" && t.Failed() {
			for i, p := range started {
				_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("%02d-%s.log", i, names[i])), []byte(p.Output()), 0o644)
			}
		}
	})
	s1 := start(h1, "server", "--disable-agent", "--cluster-init", "--agent-token", agentSecret)
	waitForServerWithin(t, h1, s1, 90*time.Second)
	serverToken, err := token.Read(filepath.Join(h1.Root, "var/lib/kedge/server/token"))
	if err != nil {
		t.Fatal(err)
	}
	url := "https://" + h1.IP + ":6443"
	ctx := t.Context()

	// Refused joins add no etcd member and write nothing, so the same host
	// can try again: the agent token; other cluster settings; a data dir
	// holding another cluster's CA (refused before asking, CA untouched).
	intruder := net.AddHost(t, "intruder")
	agentToken := token.Token{CAHash: serverToken.CAHash, Username: token.NodeUser, Secret: agentSecret}
	otherCA := filepath.Join(t.TempDir(), "tls")
	refusals := []struct {
		what  string
		setup func()
		args  []string
		want  string
	}{
		{"the agent token", nil, []string{"--token", agentToken.String()}, "agent token cannot join a server"},
		{"another cluster CIDR", nil, []string{"--token", serverToken.String(), "--cluster-cidr", "10.50.0.0/16"},
			"--cluster-cidr is 10.50.0.0/16 here but 10.42.0.0/16 in the cluster"},
		{"another cluster's CA in the data dir", func() {
			if _, err := pki.Ensure(pki.Request{Dir: otherCA, Etcd: true}, nil); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Join(intruder.Root, "var/lib/kedge/server"), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(otherCA, filepath.Join(intruder.Root, "var/lib/kedge/server/tls")); err != nil {
				t.Fatal(err)
			}
		}, []string{"--token", serverToken.String()}, "belongs to another cluster"},
	}
	for _, r := range refusals {
		if r.setup != nil {
			r.setup()
		}
		before, _ := os.ReadFile(filepath.Join(intruder.Root, "var/lib/kedge/server/tls/server-ca.crt"))
		p := start(intruder, append([]string{"server", "--disable-agent", "--server", url}, r.args...)...)
		waitFor(t, 60*time.Second, "the server join with "+r.what+" to be refused", []*hosts.Proc{s1}, func() bool { _, done := p.Exited(); return done })
		if err, _ := p.Exited(); err == nil || !strings.Contains(p.Output(), r.want) {
			t.Fatalf("join with %s: exit %v, output:\n%s", r.what, err, p.Output())
		}
		if got := etcdMembers(t, h1); len(got) != 1 {
			t.Fatalf("a join with %s changed the etcd members: %v", r.what, got)
		}
		after, _ := os.ReadFile(filepath.Join(intruder.Root, "var/lib/kedge/server/tls/server-ca.crt"))
		if !bytes.Equal(before, after) {
			t.Fatalf("a join with %s changed the data dir's CA", r.what)
		}
		if _, err := os.Stat(filepath.Join(intruder.Root, "var/lib/kedge/server/token")); err == nil {
			t.Fatalf("a join with %s stored a token", r.what)
		}
		t.Logf("join with %s refused: %s", r.what, lastLine(p.Output()))
	}

	// Two servers join at once (one of them waits while the other is a learner).
	joinStart := time.Now()
	s2 := start(h2, "server", "--disable-agent", "--server", url, "--token", serverToken.String())
	s3 := start(h3, "server", "--disable-agent", "--server", url, "--token", serverToken.String())
	all := []*hosts.Proc{s1, s2, s3}
	waitForServerWithin(t, h2, s2, 4*time.Minute)
	waitForServerWithin(t, h3, s3, 4*time.Minute)
	t.Logf("two servers joined and ready in %.1fs", time.Since(joinStart).Seconds())
	waitFor(t, 60*time.Second, "3 voting etcd members", all, func() bool {
		m := etcdMembers(t, h1)
		return len(m) == 3 && !slices.ContainsFunc(m, func(s string) bool { return strings.HasSuffix(s, "(learner)") })
	})
	for _, h := range []*hosts.Host{h1, h2, h3} {
		t.Logf("etcd members seen by %s: %v", h.Name, etcdMembers(t, h))
	}
	c1, c2, c3 := serverClient(t, h1), serverClient(t, h2), serverClient(t, h3)

	// Writes on one server are read on the others.
	putConfigMap(t, c2, "written-on-2")
	for i, c := range []kubernetes.Interface{c1, c3} {
		waitFor(t, 30*time.Second, fmt.Sprintf("server %d to read the write of server 2", []int{1, 3}[i]), all, func() bool { return hasConfigMap(ctx, c, "written-on-2") })
	}
	putConfigMap(t, c1, "written-on-1")
	waitFor(t, 30*time.Second, "server 3 to read the write of server 1", all, func() bool { return hasConfigMap(ctx, c3, "written-on-1") })

	waitFor(t, 60*time.Second, "the kubernetes endpoints to list all three servers", all, func() bool {
		return slices.Equal(kubernetesEndpoints(ctx, c2), sortedIPs(h1, h2, h3))
	})
	if h := controllersLeader(ctx, c2); h != "server1" {
		t.Fatalf("controllers leader is %q, want server1 (it was alone first)", h)
	}

	// An agent joins through server 1; its load balancer learns all three.
	edge := net.AddHost(t, "edge")
	stageTestImage(t, edge)
	agent := edge.Start(t, kedge, "agent", "--server", url, "--token", agentToken.String())
	started, names = append(started, agent), append(names, edge.Name)
	waitNodeReady(t, c2, "edge", append(all, agent))
	waitFor(t, 60*time.Second, "the agent's load balancer to learn the three servers", []*hosts.Proc{agent}, func() bool {
		b, _ := os.ReadFile(filepath.Join(edge.Root, "var/lib/kedge/agent/lb-servers.json"))
		return strings.Contains(string(b), h2.IP+":6443") && strings.Contains(string(b), h3.IP+":6443")
	})

	// The agent keeps a tunnel to each server: with the servers' direct
	// connections to its kubelet dropped (as behind NAT), logs and exec of
	// its pod work through each server's API.
	table := "kedge-e2e-no-inbound"
	nft(t, edge, fmt.Sprintf(`table inet %s { chain input { type filter hook input priority -10; policy accept; ip saddr { %s, %s, %s } tcp dport 10250 drop; }; }`,
		table, h1.IP, h2.IP, h3.IP))
	t.Cleanup(func() {
		_ = exec.Command("ip", "netns", "exec", edge.NS, "nft", "delete", "table", "inet", table).Run()
	})
	if _, err := c2.CoreV1().Pods("default").Create(ctx, testPod("web", "edge"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPodRunning(t, c2, "web", append(all, agent))
	throughTunnel := func(h *hosts.Host, procs []*hosts.Proc) {
		t.Helper()
		k := kubectlOn(kedge, h)
		waitFor(t, 30*time.Second, "kubectl logs through "+h.Name+"'s tunnel", procs, func() bool {
			out, err := k("logs", "web")
			return err == nil && strings.Contains(out, "testimage listening on :8080")
		})
		if out, err := k("exec", "web", "--", "/testimage", "get", "http://127.0.0.1:8080/"); err != nil || out != "hello from web\n" {
			t.Fatalf("kubectl exec through %s's tunnel: %v\n%s", h.Name, err, out)
		}
	}
	for _, h := range []*hosts.Host{h1, h2, h3} {
		throughTunnel(h, append(all, agent))
	}
	t.Logf("kubectl logs and exec through each server's tunnel")
	probe := lbProbe(t, edge)

	// Stop the first server, which leads the controllers and serves the agent.
	stopped := time.Now()
	if err := s1.Stop(20 * time.Second); err != nil {
		t.Fatalf("stop server1: %v\n%s", err, s1.Output())
	}
	t.Logf("server1 stopped in %.1fs", time.Since(stopped).Seconds())
	waitFor(t, 30*time.Second, "the agent's balancer to answer through another server", []*hosts.Proc{agent}, func() bool {
		return probe.answeredSince(stopped)
	})
	gap := probe.stop()
	t.Logf("agent's API unreachable for %.2fs while server1 stopped", gap.Seconds())
	if gap > 2*time.Second {
		t.Errorf("the agent failed over in %.2fs, want under 2 s", gap.Seconds())
	}
	rest := []*hosts.Proc{s2, s3}
	waitFor(t, 60*time.Second, "a write through server 2 with server 1 down", rest, func() bool {
		_, err := c2.CoreV1().ConfigMaps("default").Create(ctx, configMap("written-while-1-down"), metav1.CreateOptions{})
		return err == nil
	})
	t.Logf("write through server 2 %.1fs after server 1 was stopped", time.Since(stopped).Seconds())
	waitFor(t, 30*time.Second, "server 3 to read it", rest, func() bool { return hasConfigMap(ctx, c3, "written-while-1-down") })
	waitFor(t, 60*time.Second, "the controllers leader to move", rest, func() bool {
		h := controllersLeader(ctx, c3)
		return h == "server2" || h == "server3"
	})
	t.Logf("controllers leader %s took over %.1fs after server 1 was stopped", controllersLeader(ctx, c3), time.Since(stopped).Seconds())
	waitFor(t, 60*time.Second, "the kubernetes endpoints to drop server 1", rest, func() bool {
		return slices.Equal(kubernetesEndpoints(ctx, c3), sortedIPs(h2, h3))
	})
	// The new leader's controller-manager works: a Deployment made now gets
	// its pods (Pending: there are no nodes).
	_, err = c3.AppsV1().Deployments("default").Create(ctx, deployment("after-stop"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	created := time.Now()
	waitFor(t, 60*time.Second, "the Deployment's 2 pods", rest, func() bool {
		pods, err := c2.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=after-stop"})
		return err == nil && len(pods.Items) == 2
	})
	t.Logf("Deployment pods created %.1fs after the Deployment", time.Since(created).Seconds())
	// The agent's kubelet keeps its node Lease renewed through the other servers.
	renewedAfter := func(when time.Time) bool {
		l, err := c2.CoordinationV1().Leases("kube-node-lease").Get(ctx, "edge", metav1.GetOptions{})
		return err == nil && l.Spec.RenewTime != nil && l.Spec.RenewTime.After(when)
	}
	waitFor(t, 60*time.Second, "the agent's node Lease renewed after server1 stopped", []*hosts.Proc{agent}, func() bool { return renewedAfter(stopped.Add(time.Second)) })

	// The first server starts again from its data and catches up.
	restarted := time.Now()
	s1 = start(h1, "server", "--disable-agent")
	all = []*hosts.Proc{s1, s2, s3}
	waitForServerWithin(t, h1, s1, 2*time.Minute)
	t.Logf("server1 ready again in %.1fs", time.Since(restarted).Seconds())
	c1 = serverClient(t, h1)
	waitFor(t, 30*time.Second, "server 1 to read the write made while it was down", all, func() bool { return hasConfigMap(ctx, c1, "written-while-1-down") })
	waitFor(t, 60*time.Second, "the kubernetes endpoints to list server 1 again", all, func() bool {
		return slices.Equal(kubernetesEndpoints(ctx, c1), sortedIPs(h1, h2, h3))
	})
	// The agent closed its tunnel to server 1 when the endpoints dropped
	// it, and opens one again now that they list it.
	if n := countLines(agent.Output(), "closing the tunnel to a server no longer listed", h1.IP+":6443"); n == 0 {
		t.Errorf("the agent did not close its tunnel to the stopped server 1:\n%s", agent.Output())
	}
	throughTunnel(h1, append(all, agent))
	t.Logf("logs through server 1's tunnel %.1fs after it was started again", time.Since(restarted).Seconds())
	for _, h := range []*hosts.Host{h1, h2, h3} {
		if m := etcdMembers(t, h); len(m) != 3 {
			t.Fatalf("etcd members seen by %s after the restart: %v", h.Name, m)
		} else {
			t.Logf("etcd members seen by %s: %v", h.Name, m)
		}
	}

	// A joined server restarts from its local data without joining again.
	if err := s3.Stop(20 * time.Second); err != nil {
		t.Fatalf("stop server3: %v\n%s", err, s3.Output())
	}
	s3 = start(h3, "server", "--disable-agent", "--server", url, "--token", serverToken.String())
	all = []*hosts.Proc{s1, s2, s3}
	waitForServerWithin(t, h3, s3, 2*time.Minute)
	if !strings.Contains(s3.Output(), "using the local etcd member; not joining again") {
		t.Fatalf("server3 joined again instead of using its data:\n%s", s3.Output())
	}
	putConfigMap(t, serverClient(t, h3), "written-on-3")
	waitFor(t, 30*time.Second, "server 1 to read the write of the restarted server 3", all, func() bool { return hasConfigMap(ctx, c1, "written-on-3") })

	// The controllers leader crashes (SIGKILL: no release, no withdrawal):
	// another server takes the lease when it expires, and the crashed one
	// drops out of the endpoints when its server lease expires.
	c3 = serverClient(t, h3)
	clients := map[string]kubernetes.Interface{"server1": c1, "server2": c2, "server3": c3}
	leaderName := controllersLeader(ctx, c1)
	idx := slices.Index([]string{"server1", "server2", "server3"}, leaderName)
	if idx < 0 {
		t.Fatalf("no controllers leader before the crash (%q)", leaderName)
	}
	crashed, crashedHost := all[idx], []*hosts.Host{h1, h2, h3}[idx]
	survivors := slices.Delete(slices.Clone(all), idx, idx+1)
	var other kubernetes.Interface
	var otherHosts []*hosts.Host
	for i, h := range []*hosts.Host{h1, h2, h3} {
		if i != idx {
			other = clients[h.Name]
			otherHosts = append(otherHosts, h)
		}
	}
	killed := time.Now()
	if err := syscall.Kill(-crashed.Cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the crashed server's process to end", survivors, func() bool { _, done := crashed.Exited(); return done })
	waitFor(t, 30*time.Second, "a write with the leader crashed", survivors, func() bool {
		_, err := other.CoreV1().ConfigMaps("default").Create(ctx, configMap("written-after-crash"), metav1.CreateOptions{})
		return err == nil
	})
	t.Logf("write through a survivor %.1fs after %s was killed", time.Since(killed).Seconds(), leaderName)
	waitFor(t, 45*time.Second, "the controllers leader to move after the crash", survivors, func() bool {
		h := controllersLeader(ctx, other)
		return h != "" && h != leaderName
	})
	t.Logf("controllers leader %s took over %.1fs after %s was killed (lease 15 s)", controllersLeader(ctx, other), time.Since(killed).Seconds(), leaderName)
	_, err = other.AppsV1().Deployments("default").Create(ctx, deployment("after-crash"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the pods of a Deployment made after the crash", survivors, func() bool {
		pods, err := other.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=after-crash"})
		return err == nil && len(pods.Items) == 2
	})
	waitFor(t, 60*time.Second, "the kubernetes endpoints to drop the crashed server", survivors, func() bool {
		return slices.Equal(kubernetesEndpoints(ctx, other), sortedIPs(otherHosts...))
	})
	t.Logf("endpoints dropped %s (%s) %.1fs after it was killed", leaderName, crashedHost.IP, time.Since(killed).Seconds())
	all = survivors

	// Stop all three at once: each stops its apiserver and controllers
	// while etcd still has its quorum. (Stopped one after another, the last
	// would have no quorum left.)
	stopErrs := make(chan error, len(all))
	for _, p := range all {
		go func() {
			err := p.Stop(20 * time.Second)
			if err == nil && !strings.Contains(p.Output(), "kedge server stopped") {
				err = errors.New("no clean stop")
			}
			if err != nil {
				err = fmt.Errorf("stop a server: %w\n%s", err, p.Output())
			}
			stopErrs <- err
		}()
	}
	for range all {
		if err := <-stopErrs; err != nil {
			t.Error(err)
		}
	}
}

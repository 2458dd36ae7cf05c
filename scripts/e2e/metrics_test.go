package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kedge/kedge/scripts/e2e/hosts"
	"github.com/kedge/kedge/server/integration/harness"
)

// metricsCluster is a server (with its own node) and an agent on another
// host whose kubelet the server reaches only through the agent's tunnel,
// both Ready, with a test pod running on the agent.
type metricsCluster struct {
	kedge      string
	srvHost    *hosts.Host
	srv, agent *hosts.Proc
	kubectl    func(args ...string) (string, error)
	procs      []*hosts.Proc
}

func startMetricsCluster(t *testing.T, serverArgs ...string) *metricsCluster {
	t.Helper()
	kedge := harness.Binary(t)
	net := hosts.NewNetwork(t)
	srvHost := net.AddHost(t, "server")
	agentHost := net.AddHost(t, "agent")
	stageTestImage(t, agentHost)
	// As behind NAT: only the agent's tunnel reaches its kubelet.
	table := "kedge-e2e-metrics"
	nft(t, agentHost, fmt.Sprintf(`table inet %s { chain input { type filter hook input priority -10; policy accept; ip saddr %s tcp dport 10250 drop; }; }`,
		table, srvHost.IP))
	t.Cleanup(func() {
		_ = exec.Command("ip", "netns", "exec", agentHost.NS, "nft", "delete", "table", "inet", table).Run()
	})
	srv, join := startServer(t, kedge, srvHost, serverArgs...)
	agent := agentHost.Start(t, join...)
	procs := []*hosts.Proc{srv, agent}
	admin := adminClient(t, srvHost)
	waitNodeReady(t, admin, "server", procs)
	waitNodeReady(t, admin, "agent", procs)
	if code := httpCodeFrom(srvHost, "https://"+agentHost.IP+":10250/healthz"); code != "000" {
		t.Fatalf("the server reached the agent's kubelet directly (HTTP %s); the nft rule does not hold", code)
	}
	if _, err := admin.CoreV1().Pods("default").Create(t.Context(), testPod("web", "agent"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPodRunning(t, admin, "web", procs)
	return &metricsCluster{kedge: kedge, srvHost: srvHost, srv: srv, agent: agent, kubectl: kubectlOn(kedge, srvHost), procs: procs}
}

// stderrOf is the standard error of a failed command.
func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}

// TestMetricsAPI: `kedge kubectl top nodes` lists every node with numbers
// (the server's own node, reached directly, and an agent's, reached only
// through its tunnel), `top pods -A` lists a running pod, also for a user with the
// view role, and a user without rights is refused. The cluster, with every
// add-on on, needed no image from a registry.
func TestMetricsAPI(t *testing.T) {
	c := startMetricsCluster(t)

	nodeLine := func(name string) *regexp.Regexp {
		return regexp.MustCompile(`(?m)^` + name + `\s+\d+m\s+\d+%\s+\d+Mi\s+\d+%\s*$`)
	}
	var out string
	waitFor(t, 3*time.Minute, "kubectl top nodes to list both nodes with numbers", c.procs, func() bool {
		out, _ = c.kubectl("top", "nodes")
		return nodeLine("server").MatchString(out) && nodeLine("agent").MatchString(out)
	})
	t.Logf("kubectl top nodes:\n%s", out)
	podLine := regexp.MustCompile(`(?m)^default\s+web\s+\d+m\s+\d+Mi\s*$`)
	waitFor(t, 2*time.Minute, "kubectl top pods -A to list the test pod", c.procs, func() bool {
		out, _ = c.kubectl("top", "pods", "-A")
		return podLine.MatchString(out)
	})
	t.Logf("kubectl top pods -A:\n%s", out)
	if out, err := c.kubectl("top", "pod", "web", "--containers"); err != nil || !regexp.MustCompile(`(?m)^web\s+web\s+\d+m\s+\d+Mi`).MatchString(out) {
		t.Errorf("kubectl top pod web --containers: %v\n%s", err, out)
	}

	// A user bound to the view ClusterRole (into which the manifest's
	// system:aggregated-metrics-reader aggregates) may read metrics: the
	// apiserver lets it through and the metrics API's own review agrees.
	// A user without rights is refused.
	if out, err := c.kubectl("create", "clusterrolebinding", "viewer-view", "--clusterrole", "view", "--user", "viewer"); err != nil {
		t.Fatalf("create clusterrolebinding: %v\n%s%s", err, out, stderrOf(err))
	}
	waitFor(t, time.Minute, "kubectl top pods -A --as viewer to list the test pod", c.procs, func() bool {
		out, _ = c.kubectl("top", "pods", "-A", "--as", "viewer")
		return podLine.MatchString(out)
	})
	out, err := c.kubectl("top", "nodes", "--as", "nobody")
	if err == nil || !strings.Contains(stderrOf(err), "forbidden") {
		t.Errorf("kubectl top nodes --as nobody: want forbidden, got %v\n%s%s", err, out, stderrOf(err))
	}
	noRegistryNeeded(t, c)
	if err := c.srv.Stop(20 * time.Second); err != nil || !strings.Contains(c.srv.Output(), "kedge server stopped") {
		t.Fatalf("server stop: %v\n%s", err, c.srv.Output())
	}
}

// noRegistryNeeded checks that the default cluster (every add-on on, hosts
// without a route out) got its add-ons without any image: their objects
// are there, no pod of kube-system runs, and nothing was pulled.
func noRegistryNeeded(t *testing.T, c *metricsCluster) {
	t.Helper()
	admin := adminClient(t, c.srvHost)
	ctx := t.Context()
	if _, err := admin.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{}); err != nil {
		t.Errorf("kube-dns Service: %v", err)
	}
	sc, err := admin.StorageV1().StorageClasses().Get(ctx, "local-path", metav1.GetOptions{})
	if err != nil || sc.Annotations["storageclass.kubernetes.io/is-default-class"] != "true" {
		t.Errorf("local-path default StorageClass: %v %v", err, sc)
	}
	pods, err := admin.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{})
	if err != nil || len(pods.Items) != 0 {
		t.Errorf("kube-system pods: %v, %d (want none: the add-ons run in kedge)", err, len(pods.Items))
	}
	events, err := admin.CoreV1().Events("").List(ctx, metav1.ListOptions{FieldSelector: "reason=Pulling"})
	if err != nil || len(events.Items) != 0 {
		t.Errorf("image pulls: %v, %d Pulling events", err, len(events.Items))
	}
}

// TestMetricsAPIDisabled: with --disable metrics-server the server serves no
// metrics API: no APIService, no serving certificate and no EndpointSlice.
func TestMetricsAPIDisabled(t *testing.T) {
	c := startMetricsCluster(t, "--disable", "metrics-server")
	if _, err := os.Stat(filepath.Join(c.srvHost.Root, "var/lib/kedge/server/tls/serving-metrics-server.crt")); !os.IsNotExist(err) {
		t.Errorf("metrics serving certificate issued although disabled: %v", err)
	}
	if out, err := c.kubectl("get", "apiservice", "v1beta1.metrics.k8s.io"); err == nil || !strings.Contains(stderrOf(err), "NotFound") {
		t.Errorf("kubectl get apiservice v1beta1.metrics.k8s.io: want NotFound, got %v\n%s%s", err, out, stderrOf(err))
	}
	admin := adminClient(t, c.srvHost)
	_, err := admin.DiscoveryV1().EndpointSlices("kube-system").Get(t.Context(), "metrics-server", metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("EndpointSlice kube-system/metrics-server: %v, want not found", err)
	}
}

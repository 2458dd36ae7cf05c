package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/kedge/kedge/embedded/etcdcheck"
	"github.com/kedge/kedge/scripts/e2e/hosts"
)

func waitForServerWithin(t *testing.T, h *hosts.Host, srv *hosts.Proc, timeout time.Duration) {
	t.Helper()
	insecure := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer insecure.CloseIdleConnections()
	waitFor(t, timeout, h.Name+"'s /readyz over the bridge", []*hosts.Proc{srv}, func() bool {
		resp, err := insecure.Get("https://" + h.IP + ":6443/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// serverClient is an admin client of the host's own kubeconfig, through its
// address on the bridge, with a timeout so that a stopped server fails fast.
func serverClient(t *testing.T, h *hosts.Host) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(h.Root, "etc/kedge/kedge.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Host = "https://" + h.IP + ":6443"
	cfg.Timeout = 10 * time.Second
	return kubernetes.NewForConfigOrDie(cfg)
}

// etcdMembers lists "name" or "name (learner)" through the host's etcd.
func etcdMembers(t *testing.T, h *hosts.Host) []string {
	t.Helper()
	dir := filepath.Join(h.Root, "var/lib/kedge/server/tls/etcd")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	cli, err := etcdcheck.Client(ctx, etcdcheck.Target{Endpoints: []string{"https://" + h.IP + ":2379"},
		CAFile: filepath.Join(dir, "server-ca.crt"), CertFile: filepath.Join(dir, "client.crt"), KeyFile: filepath.Join(dir, "client.key")})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	list, err := cli.MemberList(ctx)
	if err != nil {
		return nil
	}
	var out []string
	for _, m := range list.Members {
		s := fmt.Sprintf("%s/%x/%v", m.Name, m.ID, m.PeerURLs)
		if m.IsLearner {
			s += " (learner)"
		}
		out = append(out, s)
	}
	return out
}

// deployment has 2 replicas of a pod that stays Pending (there are no nodes).
func deployment(name string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(2)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "kedge.local/testimage:1"}}},
			},
		},
	}
}

func configMap(name string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"k": name}}
}

func putConfigMap(t *testing.T, c kubernetes.Interface, name string) {
	t.Helper()
	if _, err := c.CoreV1().ConfigMaps("default").Create(t.Context(), configMap(name), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create configmap %s: %v", name, err)
	}
}

func hasConfigMap(ctx context.Context, c kubernetes.Interface, name string) bool {
	cm, err := c.CoreV1().ConfigMaps("default").Get(ctx, name, metav1.GetOptions{})
	return err == nil && cm.Data["k"] == name
}

func kubernetesEndpoints(ctx context.Context, c kubernetes.Interface) []string {
	es, err := c.DiscoveryV1().EndpointSlices("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		return nil
	}
	var ips []string
	for _, e := range es.Endpoints {
		ips = append(ips, e.Addresses...)
	}
	eps, err := c.CoreV1().Endpoints("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		return nil
	}
	var fromEndpoints []string
	for _, s := range eps.Subsets {
		for _, a := range s.Addresses {
			fromEndpoints = append(fromEndpoints, a.IP)
		}
	}
	slices.Sort(ips)
	slices.Sort(fromEndpoints)
	if !slices.Equal(ips, fromEndpoints) {
		return nil
	}
	return ips
}

func sortedIPs(hs ...*hosts.Host) []string {
	var out []string
	for _, h := range hs {
		out = append(out, h.IP)
	}
	slices.Sort(out)
	return out
}

func controllersLeader(ctx context.Context, c kubernetes.Interface) string {
	l, err := c.CoordinationV1().Leases("kube-system").Get(ctx, "kedge-controllers", metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// lbProber asks an agent's load balancer for /readyz every 100 ms from
// inside the agent's host and records when it answered and when it failed.
type lbProber struct {
	mu       sync.Mutex
	results  []probeResult
	done     chan struct{}
	finished chan struct{}
}

type probeResult struct {
	at time.Time
	ok bool
}

func lbProbe(t *testing.T, h *hosts.Host) *lbProber {
	p := &lbProber{done: make(chan struct{}), finished: make(chan struct{})}
	go func() {
		defer close(p.finished)
		for {
			start := time.Now()
			ok := upstreamAnswers(h)
			p.mu.Lock()
			p.results = append(p.results, probeResult{at: start, ok: ok})
			p.mu.Unlock()
			select {
			case <-p.done:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { p.stop() })
	return p
}

// answeredSince reports whether a probe started after when succeeded.
func (p *lbProber) answeredSince(when time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.results {
		if r.ok && r.at.After(when) {
			return true
		}
	}
	return false
}

// stop ends the probing and returns the longest run of failed probes:
// from the first failure to the next success.
func (p *lbProber) stop() time.Duration {
	select {
	case <-p.done:
	default:
		close(p.done)
	}
	<-p.finished
	p.mu.Lock()
	defer p.mu.Unlock()
	var longest time.Duration
	var firstFail time.Time
	for _, r := range p.results {
		switch {
		case !r.ok && firstFail.IsZero():
			firstFail = r.at
		case r.ok && !firstFail.IsZero():
			longest = max(longest, r.at.Sub(firstFail))
			firstFail = time.Time{}
		}
	}
	return longest
}

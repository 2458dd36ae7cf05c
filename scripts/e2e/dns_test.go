package e2e

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kedge/kedge/agent/network/clusterdns"
	"github.com/kedge/kedge/scripts/e2e/hosts"
	"github.com/kedge/kedge/server/integration/harness"
)

// hostResolver is a DNS server on the host side of the test bridge, port
// 53: the "host's resolver" the agent's --resolv-conf names. It answers
// A queries for its names and NXDOMAIN otherwise, and records the names
// it was asked.
type hostResolver struct {
	mu    sync.Mutex
	asked []string
}

func startHostResolver(t *testing.T, ip string, names map[string]string) *hostResolver {
	t.Helper()
	r := &hostResolver{}
	pc, err := net.ListenPacket("udp", net.JoinHostPort(ip, "53"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		if len(q.Question) == 1 {
			name := strings.ToLower(q.Question[0].Name)
			r.mu.Lock()
			r.asked = append(r.asked, name)
			r.mu.Unlock()
			if addr, ok := names[name]; ok && q.Question[0].Qtype == dns.TypeA {
				m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5},
					A: net.ParseIP(addr)}}
			} else if !ok {
				m.Rcode = dns.RcodeNameError
			}
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return r
}

func (r *hostResolver) wasAsked(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.asked, name)
}

// TestClusterDNS: pods on an agent resolve the cluster's names (Services,
// a pod's A-B-C-D name) through the kube-dns Service (served by the DNS in
// their own node's agent), reach a
// Service by name, and get other names from the host's resolver named by
// --resolv-conf. With the agent's link cut, and after the agent restarts
// while cut, the node's Services still resolve. When the kube-dns Service
// is disabled (`--disable coredns`), the agents stop serving and the
// slices go.
func TestClusterDNS(t *testing.T) {
	kedge := harness.Binary(t)
	network := hosts.NewNetwork(t)
	srvHost, edge := network.AddHost(t, "server"), network.AddHost(t, "edge")
	stageTestImage(t, edge)
	resolver := startHostResolver(t, network.Gateway(), map[string]string{"shop.example.test.": "192.0.2.80"})
	if err := os.WriteFile(filepath.Join(edge.Root, "etc/kedge/resolv.conf"),
		[]byte("# the host's resolvers, for the test\nnameserver "+network.Gateway()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv, agentArgs := startServer(t, kedge, srvHost)
	agentArgs = append(agentArgs, "--resolv-conf", "/etc/kedge/resolv.conf")
	admin := adminClient(t, srvHost)
	ctx := t.Context()
	// The server deploys manifests/coredns.yaml.
	waitFor(t, 60*time.Second, "the kube-dns Service", []*hosts.Proc{srv}, func() bool {
		s, err := admin.CoreV1().Services(clusterdns.Namespace).Get(ctx, clusterdns.ServiceName, metav1.GetOptions{})
		return err == nil && s.Spec.ClusterIP == "10.43.0.10" && clusterdns.Managed(s)
	})
	agent := edge.Start(t, agentArgs...)
	procs := []*hosts.Proc{srv, agent}
	waitNodeReady(t, admin, "edge", procs)

	// One slice per node: the node's IP at the DNS port, with nodeName.
	waitFor(t, 60*time.Second, "a kube-dns EndpointSlice per node", procs, func() bool {
		l, err := admin.DiscoveryV1().EndpointSlices(clusterdns.Namespace).List(ctx, metav1.ListOptions{
			LabelSelector: discoveryv1.LabelServiceName + "=" + clusterdns.ServiceName})
		if err != nil {
			return false
		}
		got := map[string]string{}
		for _, s := range l.Items {
			for _, ep := range s.Endpoints {
				if ep.NodeName != nil && len(ep.Addresses) == 1 && len(s.Ports) == 2 && *s.Ports[0].Port == clusterdns.Port {
					got[*ep.NodeName] = ep.Addresses[0]
				}
			}
		}
		return len(got) == 2 && got["edge"] == edge.IP && got["server"] == srvHost.IP
	})

	for _, name := range []string{"shop", "till"} {
		if _, err := admin.CoreV1().Pods("default").Create(ctx, testPod(name, "edge"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	shop := waitPodRunning(t, admin, "shop", procs)
	waitPodRunning(t, admin, "till", procs)
	svc, err := admin.CoreV1().Services("default").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "shop"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "shop"}, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}}},
		metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Commands run in till's container through the edge's containerd, which
	// works with the link cut too.
	inTill := func(args ...string) (string, bool) {
		ids := crictl(t, edge, kedge, "ps", "-q", "--label", "io.kubernetes.pod.name=till", "--state", "running")
		if len(ids) != 1 {
			return "", false
		}
		p := edge.Start(t, append([]string{kedge, "crictl", "exec", ids[0], "/testimage"}, args...)...)
		waitFor(t, 30*time.Second, "crictl exec "+strings.Join(args, " "), nil, func() bool { _, done := p.Exited(); return done })
		err, _ := p.Exited()
		return strings.TrimSpace(p.Output()), err == nil
	}
	resolves := func(name, want string) func() bool {
		return func() bool {
			out, ok := inTill("resolve", name)
			return ok && out == want
		}
	}
	waitFor(t, 60*time.Second, "kubernetes.default.svc.cluster.local from a pod", procs, resolves("kubernetes.default.svc.cluster.local", "10.43.0.1"))
	waitFor(t, 30*time.Second, "the shop Service's full name from a pod", procs, resolves("shop.default.svc.cluster.local", svc.Spec.ClusterIP))
	waitFor(t, 30*time.Second, "the shop Service by name, over HTTP", procs, func() bool {
		out, ok := inTill("get", "http://shop/")
		return ok && out == "hello from shop"
	})
	podName := strings.ReplaceAll(shop.Status.PodIP, ".", "-") + ".default.pod.cluster.local"
	waitFor(t, 30*time.Second, "a pod's name", procs, resolves(podName, shop.Status.PodIP))
	waitFor(t, 30*time.Second, "an outside name from the host's resolver", procs, resolves("shop.example.test", "192.0.2.80"))
	if !resolver.wasAsked("shop.example.test.") {
		t.Fatal("shop.example.test resolved without asking the host's resolver")
	}
	// The node's DNS is no open resolver for its LAN: asked from outside
	// the node (the test's side of the bridge) it refuses, also cluster names.
	outside := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "udp", net.JoinHostPort(edge.IP, strconv.Itoa(clusterdns.Port)))
	}}
	for _, name := range []string{"shop.default.svc.cluster.local", "shop.example.test"} {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		addrs, err := outside.LookupHost(lctx, name)
		cancel()
		var dnsErr *net.DNSError
		if !errors.As(err, &dnsErr) || dnsErr.IsTimeout || !strings.Contains(dnsErr.Err, "misbehaving") {
			t.Fatalf("%s asked from outside the node: %v %v, want REFUSED (server misbehaving)", name, addrs, err)
		}
	}
	// What the DNS read is in the agent's cache on disk before the cut.
	waitFor(t, 30*time.Second, "the DNS's lists in the agent's API cache on disk", []*hosts.Proc{agent}, func() bool {
		var services, slices, namespaces bool
		files, _ := filepath.Glob(filepath.Join(edge.Root, "var/lib/kedge/agent/cache/*.json"))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			s := string(b)
			services = services || strings.Contains(s, `"key":"system:kube-proxy /api/v1/services"`) && strings.Contains(s, `"name":"shop"`)
			slices = slices || strings.Contains(s, `"key":"system:kube-proxy /apis/discovery.k8s.io/v1/endpointslices"`)
			namespaces = namespaces || strings.Contains(s, `"key":"system:kube-proxy /api/v1/namespaces"`)
		}
		return services && slices && namespaces
	})

	cut(t, edge, false)
	t.Cleanup(func() { cut(t, edge, true) })
	procs = []*hosts.Proc{agent}
	waitFor(t, 30*time.Second, "the agent's upstream to fail with the link cut", procs, func() bool { return !upstreamAnswers(edge) })
	waitFor(t, 30*time.Second, "the Service name resolving with the link cut", procs, resolves("shop.default.svc.cluster.local", svc.Spec.ClusterIP))
	if out, ok := inTill("get", "http://shop/"); !ok || out != "hello from shop" {
		t.Fatalf("the shop Service by name with the link cut: %q", out)
	}

	// The agent restarts while cut: its DNS starts from the cache.
	if err := agent.Stop(20 * time.Second); err != nil {
		t.Fatalf("agent stop: %v\n%s", err, agent.Output())
	}
	agent = edge.Start(t, agentArgs...)
	procs = []*hosts.Proc{agent}
	waitFor(t, 90*time.Second, "the agent ready again offline", procs, agent.Ready)
	waitFor(t, 30*time.Second, "the Service name after an offline agent restart", procs, resolves("shop.default.svc.cluster.local", svc.Spec.ClusterIP))
	waitFor(t, 30*time.Second, "kubernetes.default after an offline agent restart", procs, resolves("kubernetes.default.svc.cluster.local", "10.43.0.1"))
	if out, ok := inTill("get", "http://shop/"); !ok || out != "hello from shop" {
		t.Fatalf("the shop Service by name after an offline agent restart: %q", out)
	}

	// The link returns; then the server restarts with --disable coredns:
	// it removes the Service, its slices go with it and the agents stop
	// serving.
	cut(t, edge, true)
	procs = []*hosts.Proc{srv, agent}
	waitNodeReady(t, admin, "edge", procs)
	if err := srv.Stop(20 * time.Second); err != nil {
		t.Fatalf("server stop: %v\n%s", err, srv.Output())
	}
	srv = srvHost.Start(t, kedge, "server", "--disable", "coredns")
	procs = []*hosts.Proc{srv, agent}
	waitForServer(t, srvHost, srv)
	waitFor(t, 60*time.Second, "the kube-dns Service to go", procs, func() bool {
		_, err := admin.CoreV1().Services(clusterdns.Namespace).Get(ctx, clusterdns.ServiceName, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
	waitFor(t, 60*time.Second, "the edge's DNS to stop", procs, func() bool { return !dnsListening(t, edge) })
	waitFor(t, 60*time.Second, "the kube-dns slices to go", procs, func() bool {
		l, err := admin.DiscoveryV1().EndpointSlices(clusterdns.Namespace).List(ctx, metav1.ListOptions{
			LabelSelector: discoveryv1.LabelServiceName + "=" + clusterdns.ServiceName})
		return err == nil && len(l.Items) == 0
	})
	if out, ok := inTill("resolve", "shop.default.svc.cluster.local"); ok {
		t.Fatalf("resolved with DNS disabled: %q", out)
	}
	for _, p := range []*hosts.Proc{agent, srv} {
		if err := p.Stop(20 * time.Second); err != nil {
			t.Fatalf("stop: %v\n%s", err, p.Output())
		}
	}
	for _, l := range strings.Split(agent.Output(), "\n") {
		if strings.Contains(l, "cluster-dns") || strings.Contains(l, "plugin/") {
			t.Log("agent after the offline restart: " + l)
		}
	}
}

// dnsListening reports whether the agent's cluster DNS listens in h (on UDP
// port clusterdns.Port).
func dnsListening(t *testing.T, h *hosts.Host) bool {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", h.NS, "ss", "-Hlun", "sport", "=", ":"+strconv.Itoa(clusterdns.Port)).Output()
	if err != nil {
		t.Fatalf("ss in %s: %v", h.Name, err)
	}
	return strings.TrimSpace(string(out)) != ""
}

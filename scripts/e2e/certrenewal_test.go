package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	certutil "k8s.io/client-go/util/cert"

	"github.com/kedge/kedge/scripts/e2e/hosts"
	"github.com/kedge/kedge/server/integration/harness"
	"github.com/kedge/kedge/shared/certlife"
)

// TestCertificatesRenewOnNodes: with certificates that live a minute, a
// server (a node too) and an agent renew theirs while running and the
// cluster works past the moment the first ones expired: both Nodes keep
// posting status, logs come through the tunnel from the agent's kubelet,
// the pod is not restarted, and each renewal is a Warning Event on the
// Node. Then the agent is stopped until its certificates have expired:
// started again, it joins again with its token and its pod stays.
func TestCertificatesRenewOnNodes(t *testing.T) {
	t.Setenv(certlife.TestLifetimeEnv, "60s") // the hosts' processes inherit it
	kedge := harness.Binary(t)
	net := hosts.NewNetwork(t)
	srvHost, edge := net.AddHost(t, "server"), net.AddHost(t, "edge")
	stageTestImage(t, edge)
	srv, args := startServer(t, kedge, srvHost)
	agent := edge.Start(t, args...)
	procs := []*hosts.Proc{srv, agent}
	// Read again each time: the admin kubeconfig's certificate is renewed too.
	admin := func() kubernetes.Interface { return adminClient(t, srvHost) }
	ctx := t.Context()
	for _, n := range []string{"server", "edge"} {
		waitNodeReady(t, admin(), n, procs)
	}
	if _, err := admin().CoreV1().Pods("default").Create(ctx, testPod("steady", "edge"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	running := waitPodRunning(t, admin(), "steady", procs)
	k := kubectlOn(kedge, srvHost)

	edgeCert := filepath.Join(edge.Root, "var/lib/kedge/agent/cred/kubelet-client.crt")
	serverCert := filepath.Join(srvHost.Root, "var/lib/kedge/server/tls/serving-kube-apiserver.crt")
	expired := time.Now()
	for _, f := range []string{edgeCert, serverCert} {
		if na := notAfter(t, f); na.After(expired) {
			expired = na
		}
	}
	waitFor(t, 2*time.Minute, "the certificates of the start to expire", procs, func() bool {
		return time.Now().After(expired.Add(5 * time.Second))
	})
	for _, f := range []string{edgeCert, serverCert} {
		if na := notAfter(t, f); !na.After(time.Now()) {
			t.Fatalf("%s expired at %s and was not renewed", f, na)
		}
	}
	for _, n := range []string{"server", "edge"} {
		waitFor(t, 30*time.Second, "node "+n+" renewing its lease after the first certificates expired", procs, func() bool {
			return leaseRenewed(t, admin(), n).After(expired)
		})
	}
	waitFor(t, 30*time.Second, "logs through the tunnel from the renewed kubelet", procs, func() bool {
		out, err := k("logs", "steady")
		return err == nil && strings.Contains(out, "testimage listening on :8080")
	})
	samePod := func() error {
		p, err := admin().CoreV1().Pods("default").Get(ctx, "steady", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.UID != running.UID || p.Status.ContainerStatuses[0].RestartCount != 0 {
			return fmt.Errorf("pod UID %s (was %s), restarts %d", p.UID, running.UID, p.Status.ContainerStatuses[0].RestartCount)
		}
		return nil
	}
	if err := samePod(); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"server", "edge"} {
		events, err := admin().CoreV1().Events("default").List(ctx, metav1.ListOptions{
			FieldSelector: "involvedObject.name=" + n + ",reason=" + certlife.ExpirationWarning})
		if err != nil {
			t.Fatal(err)
		}
		if len(events.Items) == 0 || events.Items[0].Type != corev1.EventTypeWarning {
			t.Errorf("no Warning %s Event on node %s", certlife.ExpirationWarning, n)
		}
	}

	// An agent that was down until its certificates expired joins again
	// with its token when it starts.
	if err := agent.Stop(20 * time.Second); err != nil {
		t.Fatalf("stop the agent: %v\n%s", err, agent.Output())
	}
	lapsed := notAfter(t, edgeCert)
	waitFor(t, 2*time.Minute, "the stopped agent's certificates to expire", []*hosts.Proc{srv}, func() bool {
		return time.Now().After(lapsed)
	})
	restarted := time.Now()
	agent = edge.Start(t, args...)
	procs = []*hosts.Proc{srv, agent}
	waitFor(t, 90*time.Second, "the restarted agent Ready with new certificates", procs, func() bool {
		node, err := admin().CoreV1().Nodes().Get(ctx, "edge", metav1.GetOptions{})
		return err == nil && nodeReady(node) && leaseRenewed(t, admin(), "edge").After(restarted) && notAfter(t, edgeCert).After(time.Now())
	})
	if err := samePod(); err != nil {
		t.Fatalf("after the agent joined again: %v", err)
	}
}

// notAfter is the expiry of the first certificate in file.
func notAfter(t *testing.T, file string) time.Time {
	t.Helper()
	certs, err := certutil.CertsFromFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return certs[0].NotAfter
}

// leaseRenewed is when the node's kubelet last renewed its Lease (every
// 10 s while it reaches the API).
func leaseRenewed(t *testing.T, c kubernetes.Interface, node string) time.Time {
	l, err := c.CoordinationV1().Leases("kube-node-lease").Get(t.Context(), node, metav1.GetOptions{})
	if err != nil || l.Spec.RenewTime == nil {
		return time.Time{}
	}
	return l.Spec.RenewTime.Time
}

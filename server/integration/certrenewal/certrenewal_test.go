// Package certrenewal checks that a running server renews its own
// certificates and its nodes' before they expire, without a restart, and
// keeps serving with them past the moment the first ones expired.
package certrenewal

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/utils/ptr"

	"github.com/kedge/kedge/agent/join"
	"github.com/kedge/kedge/server/integration/harness"
	"github.com/kedge/kedge/shared/certlife"
)

// lifetime is short enough to watch two renewals, long enough for a slow
// start (renewal comes when a third of it is left).
const lifetime = 45 * time.Second

func TestCertificatesRenewWhileRunning(t *testing.T) {
	t.Setenv(certlife.TestLifetimeEnv, lifetime.String())
	ctx := t.Context()
	dataDir := t.TempDir()
	c := harness.NewConfig(t, dataDir)
	srv := harness.StartJoinable(t, c)
	public := "127.0.0.1:" + strconv.Itoa(c.HTTPSListenPort)
	apiserver := "127.0.0.1:" + strconv.Itoa(c.APIServerPort)
	roots := harness.ServerCAPool(t, dataDir)

	// Events about the server's certificates go to a Node named like the
	// server (its own agent's; here a stand-in).
	if _, err := srv.Client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: c.NodeName}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	firstPublic, firstAPI := servedCert(t, public, roots), servedCert(t, apiserver, roots)
	if got := firstPublic.NotAfter.Sub(firstPublic.NotBefore); got > 2*lifetime {
		t.Fatalf("the serving certificate is valid for %s; the test lifetime was not applied", got)
	}

	// A node joins, then renews with its certificate alone: same keys.
	node := join.Node{Name: "edge-1", Password: "pw-of-edge-1", Addresses: []string{"192.0.2.21"}}
	nodeDir, oldNodeDir := t.TempDir(), t.TempDir()
	joined := srv.Join(t, node)
	for _, dir := range []string{nodeDir, oldNodeDir} {
		if err := joined.Save(dir); err != nil {
			t.Fatal(err)
		}
	}
	other := join.Node{Name: "edge-2", Password: "pw-of-edge-2"}
	if _, err := join.Renew(ctx, srv.URL, nodeDir, other); err == nil {
		t.Fatal("edge-1's certificate renewed edge-2's")
	}

	// The server renews its certificates in place: the listeners present
	// new ones without a restart.
	harness.WaitFor(t, lifetime, "the server's renewed serving certificates", func() error {
		for _, addr := range []string{public, apiserver} {
			if servedCert(t, addr, roots).NotAfter.Equal(firstPublic.NotAfter) {
				return fmt.Errorf("%s still serves the first certificate", addr)
			}
		}
		return nil
	})
	renewed, err := join.Renew(ctx, srv.URL, nodeDir, node)
	if err != nil {
		t.Fatalf("renewal with the node's own certificate: %v", err)
	}
	if string(renewed.KubeletClientKey) != string(joined.KubeletClientKey) || string(renewed.KubeletClientCert) == string(joined.KubeletClientCert) {
		t.Fatal("the renewal did not keep the key or did not issue a new certificate")
	}
	if err := renewed.Save(nodeDir); err != nil {
		t.Fatal(err)
	}

	// Past the first certificates' expiry, everything still works.
	first := firstPublic.NotAfter
	joinedCert, err := certutil.ParseCertsPEM(joined.KubeletClientCert)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*x509.Certificate{firstAPI, joinedCert[0]} {
		if c.NotAfter.After(first) {
			first = c.NotAfter
		}
	}
	harness.WaitFor(t, 2*lifetime, "the first certificates to expire", func() error {
		if time.Now().Before(first.Add(time.Second)) {
			return errors.New("not yet")
		}
		return nil
	})
	for _, addr := range []string{public, apiserver} {
		if cert := servedCert(t, addr, roots); !time.Now().Before(cert.NotAfter) {
			t.Errorf("%s serves a certificate that expired at %s", addr, cert.NotAfter)
		}
	}
	admin := clientFrom(t, c.WriteKubeconfig)
	if _, err := admin.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("the admin kubeconfig written again: %v", err)
	}
	if _, err := join.Renew(ctx, srv.URL, oldNodeDir, node); !errors.Is(err, join.ErrIdentityRefused) {
		t.Fatalf("renewal with an expired certificate: %v, want ErrIdentityRefused", err)
	}
	nodeClient := srv.ClientAs(renewed.KubeletClientCert, renewed.KubeletClientKey)
	if _, err := nodeClient.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=edge-1"}); err != nil {
		t.Fatalf("the node with its renewed certificate: %v", err)
	}

	// The controller-manager and the scheduler (client certificates read
	// again from their files) still act.
	labels := map[string]string{"app": "renewal"}
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "renewal"}, Spec: appsv1.DeploymentSpec{
		Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/none"}}}}}}
	if _, err := admin.AppsV1().Deployments("default").Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, 30*time.Second, "a pod of the Deployment that the scheduler looked at", func() error {
		pods, err := admin.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=renewal"})
		if err != nil {
			return err
		}
		for _, p := range pods.Items {
			for _, cond := range p.Status.Conditions {
				if cond.Type == corev1.PodScheduled {
					return nil
				}
			}
		}
		return fmt.Errorf("%d pods, none with a PodScheduled condition", len(pods.Items))
	})

	// Each renewal was recorded on the Node.
	events, err := admin.CoreV1().Events("default").List(ctx, metav1.ListOptions{
		FieldSelector: "involvedObject.kind=Node,involvedObject.name=" + c.NodeName + ",reason=" + certlife.ExpirationWarning})
	if err != nil {
		t.Fatal(err)
	}
	if len(events.Items) == 0 {
		t.Fatalf("no %s Event on Node %s", certlife.ExpirationWarning, c.NodeName)
	}
	if e := events.Items[0]; e.Type != corev1.EventTypeWarning {
		t.Errorf("Event %s is of type %s", e.Message, e.Type)
	}
	// kedge certificate rotate on the running server: served at once.
	before := servedCert(t, public, roots)
	out, err := exec.Command(harness.Binary(t), "certificate", "rotate", "--data-dir", dataDir, "--service", "api-server").CombinedOutput()
	if err != nil {
		t.Fatalf("kedge certificate rotate: %v\n%s", err, out)
	}
	harness.WaitFor(t, 10*time.Second, "the rotated serving certificate", func() error {
		for _, addr := range []string{public, apiserver} {
			if servedCert(t, addr, roots).SerialNumber.Cmp(before.SerialNumber) == 0 {
				return fmt.Errorf("%s serves the certificate from before the rotation", addr)
			}
		}
		return nil
	})

	// Nothing expired is left in the TLS directory.
	entries, _ := filepath.Glob(filepath.Join(dataDir, "server", "tls", "*.crt"))
	for _, f := range entries {
		certs, err := certutil.CertsFromFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !time.Now().Before(certs[0].NotAfter) {
			t.Errorf("%s expired at %s", f, certs[0].NotAfter)
		}
	}
}

// servedCert is the certificate addr presents, verified against roots.
func servedCert(t *testing.T, addr string, roots *x509.CertPool) *x509.Certificate {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("TLS to %s: %v", addr, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

func clientFrom(t *testing.T, kubeconfig string) kubernetes.Interface {
	t.Helper()
	if _, err := os.Stat(kubeconfig); err != nil {
		t.Fatal(err)
	}
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	rc.Timeout = 10 * time.Second
	return kubernetes.NewForConfigOrDie(rc)
}

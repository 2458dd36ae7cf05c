// Package metricsapi_test checks the in-process metrics API of a real
// control plane: the supervisor serves it to connections with TLS server
// name metrics-server.kube-system.svc (certificate from the server CA),
// only to the front-proxy certificate, and the real apiserver's RBAC
// decides through SubjectAccessReviews.
package metricsapi_test

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kedge/kedge/scripts/testenv"
	"github.com/kedge/kedge/server/integration/harness"
)

func TestMetricsAPIOnRealControlPlane(t *testing.T) {
	dir := t.TempDir()
	c := harness.NewConfig(t, dir)
	srv := harness.StartInProcess(t, c)
	tlsDir := filepath.Join(dir, "server", "tls")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(c.HTTPSListenPort))

	roots := harness.ServerCAPool(t, dir)
	load := func(name string) *tls.Certificate {
		cert, err := tls.LoadX509KeyPair(filepath.Join(tlsDir, name+".crt"), filepath.Join(tlsDir, name+".key"))
		if err != nil {
			t.Fatal(err)
		}
		return &cert
	}
	proxy, admin := load("client-auth-proxy"), load("client-admin")

	// get requests path as the aggregator does: server name
	// metrics-server.kube-system.svc, verified against the server CA.
	get := func(cert *tls.Certificate, path, user string, groups ...string) (int, string) {
		t.Helper()
		cfg := &tls.Config{RootCAs: roots, ServerName: "metrics-server.kube-system.svc"}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
		defer client.CloseIdleConnections()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://"+addr+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if user != "" {
			req.Header.Set("X-Remote-User", user)
		}
		for _, g := range groups {
			req.Header.Add("X-Remote-Group", g)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}

	const nodes = "/apis/metrics.k8s.io/v1beta1/nodes"
	if code, body := get(nil, nodes, "alice"); code != http.StatusUnauthorized {
		t.Errorf("without a client certificate: %d %s, want 401", code, body)
	}
	// The admin certificate is good for the apiserver, not as a front proxy.
	if code, body := get(admin, nodes, "alice"); code != http.StatusUnauthorized {
		t.Errorf("with the admin certificate: %d %s, want 401", code, body)
	}
	if code, body := get(proxy, "/apis/metrics.k8s.io/v1beta1", "system:kube-aggregator"); code != http.StatusOK || !strings.Contains(body, `"PodMetrics"`) {
		t.Errorf("discovery: %d %s", code, body)
	}
	if code, body := get(proxy, nodes, "alice"); code != http.StatusForbidden || !strings.Contains(body, `cannot list nodes.metrics.k8s.io`) {
		t.Errorf("alice without RBAC: %d %s, want 403", code, body)
	}
	if code, body := get(proxy, nodes, "bob", "system:masters"); code != http.StatusOK || !strings.Contains(body, `"NodeMetricsList"`) {
		t.Errorf("bob in system:masters: %d %s, want 200", code, body)
	}

	ctx := t.Context()
	if _, err := srv.Client.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "test-metrics-reader"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"metrics.k8s.io"}, Resources: []string{"pods"}, Verbs: []string{"list"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Client.RbacV1().RoleBindings("default").Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "alice-metrics", Namespace: "default"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "test-metrics-reader"},
		Subjects:   []rbacv1.Subject{{Kind: "User", Name: "alice"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// RBAC changes reach the authorizer through its informers.
	var body string
	testenv.WaitFor(t, 30*time.Second, "alice with a RoleBinding in default to get 200", func() error {
		var code int
		if code, body = get(proxy, "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods", "alice"); code != http.StatusOK {
			return fmt.Errorf("%d %s", code, body)
		}
		return nil
	})
	var list struct{ Kind string }
	if err := json.Unmarshal([]byte(body), &list); err != nil || list.Kind != "PodMetricsList" {
		t.Errorf("pods in default: %s", body)
	}
	if code, body := get(proxy, "/apis/metrics.k8s.io/v1beta1/namespaces/kube-system/pods", "alice"); code != http.StatusForbidden {
		t.Errorf("alice in kube-system: %d %s, want 403", code, body)
	}

	// Other server names still reach the apiserver on the same port.
	cfg := &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{*admin}}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("https://" + addr + "/api/v1/namespaces/kube-system")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("apiserver through the same port: %s", resp.Status)
	}

	// The packaged manifest (applied by the server) makes the Service; its
	// EndpointSlice points at this server's public port, owned by the
	// Service, so that deleting the Service (what --disable metrics-server
	// does) removes it.
	var svc *corev1.Service
	var slice *discoveryv1.EndpointSlice
	testenv.WaitFor(t, 60*time.Second, "the Service and EndpointSlice kube-system/metrics-server", func() (err error) {
		if svc, err = srv.Client.CoreV1().Services("kube-system").Get(ctx, "metrics-server", metav1.GetOptions{}); err != nil {
			return err
		}
		slice, err = srv.Client.DiscoveryV1().EndpointSlices("kube-system").Get(ctx, "metrics-server", metav1.GetOptions{})
		return err
	})
	if s := slice; len(s.Ports) != 1 || *s.Ports[0].Port != int32(c.HTTPSListenPort) || len(s.Endpoints) != 1 ||
		len(s.OwnerReferences) != 1 || s.OwnerReferences[0].UID != svc.UID {
		t.Errorf("endpointslice = %+v", s)
	}
	if err := srv.Client.CoreV1().Services("kube-system").Delete(ctx, "metrics-server", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.WaitUntil(t, 60*time.Second, "the EndpointSlice to go with its Service", func() bool {
		_, err := srv.Client.DiscoveryV1().EndpointSlices("kube-system").Get(ctx, "metrics-server", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
}

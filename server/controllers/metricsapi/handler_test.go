package metricsapi

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
	k8stesting "k8s.io/client-go/testing"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"

	"github.com/kedge/kedge/server/pki"
)

// testAPI serves a Handler over TLS that asks for client certificates, with
// the real request-header CA and front-proxy certificate of pki.Ensure.
// Only user "alice" (and group "readers" for pods in "default") may read.
type testAPI struct {
	url     string
	proxy   tls.Certificate // the aggregator's front-proxy certificate
	admin   tls.Certificate // signed by the client CA, not the request-header CA
	rootCAs *x509.CertPool
	reviews *[]authorizationv1.SubjectAccessReviewSpec
}

func meta(kind, ns, name string, labels map[string]string) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: kind},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
	}
}

func newTestAPI(t *testing.T) *testAPI {
	t.Helper()
	files, err := pki.Ensure(pki.Request{Dir: t.TempDir(), APIServerDNS: []string{"localhost"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rhPEM, err := os.ReadFile(files.RequestHeaderCA)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(rhPEM)

	now := time.Now()
	store := &Store{}
	started := now.Add(-time.Hour)
	store.Add("n1", &Scrape{Node: &Sample{CPU: 10, Memory: 1 << 30, Time: now.Add(-20 * time.Second)}, Containers: map[ContainerKey]Sample{
		{"default", "web", "web"}:         {CPU: 1, Memory: 1 << 20, Time: now.Add(-20 * time.Second), Start: started},
		{"default", "db", "db"}:           {CPU: 1, Memory: 1 << 20, Time: now.Add(-20 * time.Second), Start: started},
		{"default", "gone", "gone"}:       {CPU: 1, Memory: 1 << 20, Time: now.Add(-20 * time.Second), Start: started},
		{"kube-system", "dns", "coredns"}: {CPU: 1, Memory: 1 << 20, Time: now.Add(-20 * time.Second), Start: started},
	}})
	store.Add("n1", &Scrape{Node: &Sample{CPU: 12, Memory: 1 << 30, Time: now.Add(-10 * time.Second)}, Containers: map[ContainerKey]Sample{
		{"default", "web", "web"}:         {CPU: 1.5, Memory: 2 << 20, Time: now.Add(-10 * time.Second), Start: started},
		{"default", "db", "db"}:           {CPU: 1.1, Memory: 3 << 20, Time: now.Add(-10 * time.Second), Start: started},
		{"default", "gone", "gone"}:       {CPU: 1.1, Memory: 3 << 20, Time: now.Add(-10 * time.Second), Start: started},
		{"kube-system", "dns", "coredns"}: {CPU: 1.2, Memory: 4 << 20, Time: now.Add(-10 * time.Second), Start: started},
	}})

	scheme := metadatafake.NewTestScheme()
	metav1.AddMetaToScheme(scheme)
	md := metadatafake.NewSimpleMetadataClient(scheme,
		meta("Node", "", "n1", map[string]string{"role": "edge"}),
		meta("Node", "", "n2", nil), // no metrics yet
		meta("Pod", "default", "web", map[string]string{"app": "web"}),
		meta("Pod", "default", "db", map[string]string{"app": "db"}),
		meta("Pod", "kube-system", "dns", map[string]string{"app": "dns"}),
	)
	var reviews []authorizationv1.SubjectAccessReviewSpec
	client := fake.NewClientset()
	client.PrependReactor("create", "subjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		sar := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview)
		reviews = append(reviews, sar.Spec)
		ra := sar.Spec.ResourceAttributes
		sar.Status.Allowed = sar.Spec.User == "alice" ||
			(ra.Resource == "pods" && ra.Namespace == "default" && len(sar.Spec.Groups) == 1 && sar.Spec.Groups[0] == "readers")
		return true, sar, nil
	})
	h := &Handler{Store: store, Reviews: client.AuthorizationV1().SubjectAccessReviews(), Metadata: md,
		ClientCAs: roots, AllowedNames: []string{"system:auth-proxy"}}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	proxy, err := tls.LoadX509KeyPair(files.AuthProxyCert, files.AuthProxyKey)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := tls.LoadX509KeyPair(files.AdminCert, files.AdminKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return &testAPI{url: srv.URL, proxy: proxy, admin: admin, rootCAs: pool, reviews: &reviews}
}

// get requests path with cert (none if nil) and the front-proxy headers.
func (a *testAPI) get(t *testing.T, cert *tls.Certificate, path, user string, groups ...string) (int, []byte) {
	t.Helper()
	cfg := &tls.Config{RootCAs: a.rootCAs}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, a.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.Header.Set(userHeader, user)
	}
	for _, g := range groups {
		req.Header.Add(groupHeader, g)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func TestHandlerRefusals(t *testing.T) {
	a := newTestAPI(t)
	for _, tc := range []struct {
		name   string
		cert   *tls.Certificate
		path   string
		user   string
		groups []string
		code   int
		msg    string
	}{
		{"no client certificate", nil, "/apis/metrics.k8s.io/v1beta1/nodes", "alice", nil, 401, "client certificate is required"},
		{"certificate of another CA", &a.admin, "/apis/metrics.k8s.io/v1beta1/nodes", "alice", nil, 401, "front-proxy client certificate"},
		{"no user header", &a.proxy, "/apis/metrics.k8s.io/v1beta1/nodes", "", nil, 401, "no X-Remote-User"},
		{"discovery without user", &a.proxy, "/apis/metrics.k8s.io/v1beta1", "", nil, 401, "no X-Remote-User"},
		{"user may not list nodes", &a.proxy, "/apis/metrics.k8s.io/v1beta1/nodes", "bob", nil, 403, `user "bob" cannot list nodes.metrics.k8s.io`},
		{"group only in default", &a.proxy, "/apis/metrics.k8s.io/v1beta1/namespaces/kube-system/pods", "bob", []string{"readers"}, 403, "in namespace kube-system"},
		{"get of a pod", &a.proxy, "/apis/metrics.k8s.io/v1beta1/namespaces/kube-system/pods/dns", "bob", nil, 403, "cannot get pods.metrics.k8s.io dns"},
		{"watch", &a.proxy, "/apis/metrics.k8s.io/v1beta1/pods?watch=true", "alice", nil, 405, "watch"},
		{"unknown path", &a.proxy, "/apis/metrics.k8s.io/v1beta1/services", "alice", nil, 404, "not found"},
		{"node without metrics", &a.proxy, "/apis/metrics.k8s.io/v1beta1/nodes/n2", "alice", nil, 404, `nodes.metrics.k8s.io "n2" not found`},
		{"unknown node", &a.proxy, "/apis/metrics.k8s.io/v1beta1/nodes/n9", "alice", nil, 404, `nodes.metrics.k8s.io "n9" not found`},
		{"pod deleted since the scrape", &a.proxy, "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/gone", "alice", nil, 404, `pods.metrics.k8s.io "gone" not found`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := a.get(t, tc.cert, tc.path, tc.user, tc.groups...)
			var st metav1.Status
			if err := json.Unmarshal(body, &st); err != nil {
				t.Fatalf("%d %s: not a Status: %v", code, body, err)
			}
			if code != tc.code || int(st.Code) != tc.code || st.Kind != "Status" || !strings.Contains(st.Message, tc.msg) {
				t.Errorf("%d %s, want %d with %q", code, body, tc.code, tc.msg)
			}
		})
	}
}

func TestHandlerServes(t *testing.T) {
	a := newTestAPI(t)

	code, body := a.get(t, &a.proxy, "/apis/metrics.k8s.io/v1beta1", "system:kube-aggregator")
	var res metav1.APIResourceList
	if err := json.Unmarshal(body, &res); code != 200 || err != nil || res.GroupVersion != "metrics.k8s.io/v1beta1" || len(res.APIResources) != 2 {
		t.Fatalf("discovery: %d %s", code, body)
	}
	if len(*a.reviews) != 0 {
		t.Errorf("discovery was authorized with %v; any authenticated user may discover", *a.reviews)
	}

	code, body = a.get(t, &a.proxy, "/apis/metrics.k8s.io/v1beta1/nodes", "alice")
	var nodes metricsv1beta1.NodeMetricsList
	if err := json.Unmarshal(body, &nodes); code != 200 || err != nil || nodes.Kind != "NodeMetricsList" {
		t.Fatalf("nodes: %d %s", code, body)
	}
	if len(nodes.Items) != 1 || nodes.Items[0].Name != "n1" || nodes.Items[0].Labels["role"] != "edge" {
		t.Fatalf("nodes = %s, want n1 only (n2 has no metrics)", body)
	}
	u := nodes.Items[0].Usage
	if cpu, mem := u.Cpu().MilliValue(), u.Memory().Value(); cpu != 200 || mem != 1<<30 || nodes.Items[0].Window.Duration != 10*time.Second {
		t.Errorf("n1 usage cpu %dm memory %d window %v, want 200m, 1Gi, 10s", cpu, mem, nodes.Items[0].Window)
	}
	if r := (*a.reviews)[0]; r.User != "alice" || r.ResourceAttributes.Verb != "list" || r.ResourceAttributes.Group != "metrics.k8s.io" || r.ResourceAttributes.Resource != "nodes" {
		t.Errorf("review = %+v", r)
	}

	code, body = a.get(t, &a.proxy, "/apis/metrics.k8s.io/v1beta1/nodes?labelSelector=role%3Dcloud", "alice")
	if err := json.Unmarshal(body, &nodes); code != 200 || err != nil || len(nodes.Items) != 0 {
		t.Errorf("nodes with role=cloud: %d %s", code, body)
	}

	code, body = a.get(t, &a.proxy, "/apis/metrics.k8s.io/v1beta1/pods", "alice")
	var pods metricsv1beta1.PodMetricsList
	if err := json.Unmarshal(body, &pods); code != 200 || err != nil {
		t.Fatalf("pods: %d %s", code, body)
	}
	var names []string
	for _, p := range pods.Items {
		names = append(names, p.Namespace+"/"+p.Name)
	}
	if strings.Join(names, ",") != "default/db,default/web,kube-system/dns" {
		t.Errorf("pods = %v, want db, web, dns (not the deleted one)", names)
	}

	code, body = a.get(t, &a.proxy, "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=app%3Dweb", "bob", "readers")
	if err := json.Unmarshal(body, &pods); code != 200 || err != nil || len(pods.Items) != 1 || pods.Items[0].Name != "web" {
		t.Fatalf("pods app=web: %d %s", code, body)
	}
	c := pods.Items[0].Containers
	if len(c) != 1 || c[0].Name != "web" || c[0].Usage.Cpu().MilliValue() != 50 || c[0].Usage.Memory().Value() != 2<<20 || pods.Items[0].Labels["app"] != "web" {
		t.Errorf("web = %s", body)
	}

	code, body = a.get(t, &a.proxy, "/apis/metrics.k8s.io/v1beta1/namespaces/kube-system/pods/dns", "alice")
	var pod metricsv1beta1.PodMetrics
	if err := json.Unmarshal(body, &pod); code != 200 || err != nil || pod.Kind != "PodMetrics" || pod.Name != "dns" || pod.Containers[0].Usage.Cpu().MilliValue() != 20 {
		t.Errorf("pod dns: %d %s", code, body)
	}
}

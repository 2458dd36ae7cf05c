package metricsapi

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// fakeAPIServer answers the node list and n1's node-proxied
// /metrics/resource (its CPU counter grows by 0.5 core-seconds per second);
// n2's kubelet is unreachable (502), as the node proxy answers then.
type fakeAPIServer struct {
	mu      sync.Mutex
	scrapes int
	nodes   []string
	accept  string
}

func (f *fakeAPIServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.URL.Path {
	case "/api/v1/nodes":
		var items []string
		for _, n := range f.nodes {
			items = append(items, fmt.Sprintf(`{"metadata":{"name":%q}}`, n))
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"kind":"NodeList","apiVersion":"v1","items":[%s]}`, strings.Join(items, ","))
	case "/api/v1/nodes/n1/proxy/metrics/resource":
		f.accept = r.Header.Get("Accept")
		ts := int64(1764582000000 + f.scrapes*15000)
		cpu := 100 + float64(f.scrapes)*7.5
		f.scrapes++
		fmt.Fprintf(w, "node_cpu_usage_seconds_total %g %d\nnode_memory_working_set_bytes 1048576 %d\n", cpu, ts, ts)
	case "/api/v1/nodes/n2/proxy/metrics/resource":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"dial n2: no route","code":502}`)
	default:
		http.NotFound(w, r)
	}
}

func TestCollector(t *testing.T) {
	api := &fakeAPIServer{nodes: []string{"n1", "n2"}}
	srv := httptest.NewServer(api)
	defer srv.Close()
	client, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	store := &Store{Now: func() time.Time { return time.UnixMilli(1764582030000) }}
	c := &Collector{Client: client, Store: store, Log: slog.New(slog.NewTextHandler(&logs, nil))}
	for range 2 {
		if err := c.collect(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	u, ok := store.Node("n1")
	if !ok || u.NanoCores != 500_000_000 || u.Memory != 1<<20 || u.Window != 15*time.Second {
		t.Errorf("n1 usage = %+v, %v; want 0.5 cores over 15 s", u, ok)
	}
	if !strings.HasPrefix(api.accept, "text/plain") {
		t.Errorf("scrape Accept = %q, want the text format", api.accept)
	}
	if _, ok := store.Node("n2"); ok {
		t.Error("usage for the unreachable node")
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 || !strings.Contains(logs.String(), "node=n2") {
		t.Errorf("want one warning for n2 over two failed scrapes, got:\n%s", logs.String())
	}
	// A node that left the cluster is forgotten.
	api.mu.Lock()
	api.nodes = []string{"n2"}
	api.mu.Unlock()
	if err := c.collect(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, ok := store.Node("n1"); ok {
		t.Error("a deleted node is still served")
	}
}

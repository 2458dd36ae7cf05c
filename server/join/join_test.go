package join

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	certutil "k8s.io/client-go/util/cert"

	"github.com/kedge/kedge/server/join/nodepassword"
	"github.com/kedge/kedge/server/pki"
	"github.com/kedge/kedge/shared/joinapi"
)

const secret = "server-secret-0123456789"

func newHandler(t *testing.T) (*Handler, *fake.Clientset) {
	t.Helper()
	files, err := pki.Ensure(pki.Request{Dir: t.TempDir(), APIServerDNS: []string{"localhost"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	serverCA, _ := pki.LoadCA(files.ServerCA, files.ServerCAKey)
	clientCA, _ := pki.LoadCA(files.ClientCA, files.ClientCAKey)
	cs := fake.NewClientset()
	return &Handler{
		CABundle: []byte("CA"), ServerCA: serverCA, ClientCA: clientCA,
		ServerSecret: func() string { return secret },
		Passwords:    &nodepassword.Store{Client: cs},
		Log:          slog.New(slog.DiscardHandler),
	}, cs
}

func csr(t *testing.T) string {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	b, err := certutil.MakeCSR(key, &pkix.Name{CommonName: "x"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func request(t *testing.T, mutate func(*joinapi.NodeCertsRequest)) []byte {
	r := joinapi.NodeCertsRequest{NodeName: "edge-1", NodePassword: "pw", Addresses: []string{"192.0.2.1", "edge-1.local"},
		KubeletClientCSR: csr(t), KubeletServingCSR: csr(t), KubeProxyCSR: csr(t)}
	if mutate != nil {
		mutate(&r)
	}
	b, _ := json.Marshal(r)
	return b
}

func do(h http.Handler, method, path string, body []byte, user, pass string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestMalformedRequestsAreRefusedAndWriteNothing(t *testing.T) {
	h, cs := newHandler(t)
	cases := []struct {
		name   string
		method string
		body   []byte
		user   string
		status int
	}{
		{"GET", http.MethodGet, nil, "server", http.StatusMethodNotAllowed},
		{"no credentials", http.MethodPost, request(t, nil), "", http.StatusUnauthorized},
		{"agent user without agent token", http.MethodPost, request(t, nil), "node-x", http.StatusUnauthorized},
		// A caller without credentials learns nothing about its request.
		{"no credentials, bad node name", http.MethodPost, request(t, func(r *joinapi.NodeCertsRequest) { r.NodeName = "" }), "", http.StatusUnauthorized},
		{"no credentials, not json", http.MethodPost, []byte("{"), "node-x", http.StatusUnauthorized},
		{"not json", http.MethodPost, []byte("{"), "server", http.StatusBadRequest},
		{"huge body", http.MethodPost, bytes.Repeat([]byte("a"), maxBody+10), "server", http.StatusBadRequest},
		{"bad node name", http.MethodPost, request(t, func(r *joinapi.NodeCertsRequest) { r.NodeName = "Edge_1" }), "server", http.StatusBadRequest},
		{"bad address", http.MethodPost, request(t, func(r *joinapi.NodeCertsRequest) { r.Addresses = []string{"not an address!"} }), "server", http.StatusBadRequest},
		{"bad csr", http.MethodPost, request(t, func(r *joinapi.NodeCertsRequest) { r.KubeletServingCSR = "garbage" }), "server", http.StatusBadRequest},
		{"empty password", http.MethodPost, request(t, func(r *joinapi.NodeCertsRequest) { r.NodePassword = "" }), "server", http.StatusBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := do(h, tc.method, joinapi.NodeCertsPath, tc.body, tc.user, secret)
			if rec.Code != tc.status {
				b, _ := io.ReadAll(rec.Body)
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, b)
			}
		})
	}
	list, _ := cs.CoreV1().Secrets(nodepassword.Namespace).List(t.Context(), metav1.ListOptions{})
	if len(list.Items) != 0 {
		t.Fatalf("refused requests wrote %d secrets", len(list.Items))
	}
}

func TestCACertsAndIssue(t *testing.T) {
	h, cs := newHandler(t)
	if rec := do(h, http.MethodGet, joinapi.CACertsPath, nil, "", ""); rec.Code != 200 || rec.Body.String() != "CA" {
		t.Fatalf("/cacerts: %d %q", rec.Code, rec.Body.String())
	}
	if rec := do(h, http.MethodPost, joinapi.CACertsPath, nil, "", ""); rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST /cacerts: %d", rec.Code)
	}
	rec := do(h, http.MethodPost, joinapi.NodeCertsPath, request(t, nil), "server", secret)
	if rec.Code != 200 {
		t.Fatalf("issue: %d %s", rec.Code, rec.Body.String())
	}
	var resp joinapi.NodeCertsResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || resp.KubeletClientCert == "" {
		t.Fatalf("response %+v, %v", resp, err)
	}
	if _, err := cs.CoreV1().Secrets(nodepassword.Namespace).Get(t.Context(), nodepassword.SecretName("edge-1"), metav1.GetOptions{}); err != nil {
		t.Fatalf("node password not recorded: %v", err)
	}
	// The same name with another password is forbidden.
	rec = do(h, http.MethodPost, joinapi.NodeCertsPath, request(t, func(r *joinapi.NodeCertsRequest) { r.NodePassword = "other" }), "server", secret)
	if rec.Code != http.StatusForbidden {
		t.Fatalf("reused name: %d", rec.Code)
	}
}

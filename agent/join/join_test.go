package join

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kedge/kedge/shared/joinapi"
	"github.com/kedge/kedge/shared/token"
)

// caServer serves bundle at joinapi.CACertsPath with c's serving
// certificate and counts the requests.
func caServer(t *testing.T, c *cluster, bundle []byte, hits *atomic.Int32) string {
	return c.serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path != joinapi.CACertsPath {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(bundle)
	}))
}

func TestFetchCA(t *testing.T) {
	c, other := newCluster(t, time.Time{}), newCluster(t, time.Time{})
	pinned := token.Token{CAHash: token.CAHash(c.caPEM), Username: token.NodeUser, Secret: testSecret}

	t.Run("the pinned CA", func(t *testing.T) {
		var hits atomic.Int32
		got, err := FetchCA(t.Context(), caServer(t, c, c.caPEM, &hits)+"/", pinned)
		if err != nil || string(got) != string(c.caPEM) {
			t.Fatalf("FetchCA = %q, %v; want the server CA", got, err)
		}
	})
	t.Run("a token without a CA hash asks nothing", func(t *testing.T) {
		var hits atomic.Int32
		url := caServer(t, c, c.caPEM, &hits)
		if _, err := FetchCA(t.Context(), url, token.Token{Secret: pinned.Secret}); err == nil {
			t.Fatal("FetchCA trusted a server without a pin")
		}
		if hits.Load() != 0 {
			t.Errorf("%d requests sent without a pin", hits.Load())
		}
	})
	t.Run("another cluster's CA", func(t *testing.T) {
		var hits atomic.Int32
		if _, err := FetchCA(t.Context(), caServer(t, other, other.caPEM, &hits), pinned); !errors.Is(err, ErrCAMismatch) {
			t.Fatalf("FetchCA = %v, want ErrCAMismatch", err)
		}
	})
	t.Run("the pinned bundle replayed by a server of another CA", func(t *testing.T) {
		var hits atomic.Int32
		_, err := FetchCA(t.Context(), caServer(t, other, c.caPEM, &hits), pinned)
		if err == nil || !strings.Contains(err.Error(), "not signed by the pinned CA") {
			t.Fatalf("FetchCA = %v, want a refusal of the server's certificate", err)
		}
	})
	t.Run("no CA served", func(t *testing.T) {
		url := c.serve(t, http.NotFoundHandler())
		if _, err := FetchCA(t.Context(), url, pinned); err == nil || !strings.Contains(err.Error(), "404") {
			t.Fatalf("FetchCA = %v, want the 404", err)
		}
	})
}

// joinServer answers joinapi.NodeCertsPath like the server's join API:
// it checks the token, then answers status with body, or (status 0) signs
// the CSRs with c's client CA and answers serverCA (c's CA if nil).
type joinServer struct {
	c        *cluster
	user     string
	status   int
	body     string
	serverCA []byte
	raw      []byte // the last request body
}

func (s *joinServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, secret, ok := r.BasicAuth()
	if r.URL.Path != joinapi.NodeCertsPath || r.Method != http.MethodPost || !ok || user != s.user || secret != testSecret {
		http.Error(w, "token rejected", http.StatusUnauthorized)
		return
	}
	if s.status != 0 {
		http.Error(w, s.body, s.status)
		return
	}
	var req joinapi.NodeCertsRequest
	s.raw, _ = io.ReadAll(r.Body)
	if err := json.Unmarshal(s.raw, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	resp := joinapi.NodeCertsResponse{ServerCA: string(s.c.caPEM), ClientCA: "client CA",
		Cluster: joinapi.Cluster{ClusterDNS: "10.43.0.10", ClusterDomain: "cluster.local"}}
	if s.serverCA != nil {
		resp.ServerCA = string(s.serverCA)
	}
	for _, x := range []struct {
		out     *string
		csr, cn string
	}{
		{&resp.KubeletClientCert, req.KubeletClientCSR, "system:node:" + req.NodeName},
		{&resp.KubeletServingCert, req.KubeletServingCSR, req.NodeName},
		{&resp.KubeProxyCert, req.KubeProxyCSR, "system:kube-proxy"},
	} {
		var err error
		if *x.out, err = s.c.sign(x.csr, x.cn); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	_ = json.NewEncoder(w).Encode(resp)
}

const testSecret = "0123456789abcdef0123"

func TestRequestCerts(t *testing.T) {
	c, other := newCluster(t, time.Time{}), newCluster(t, time.Time{})
	node := Node{Name: "edge-1", Password: "node-password", Addresses: []string{"192.0.2.7"}}
	tok := token.Token{CAHash: token.CAHash(c.caPEM), Secret: testSecret} // no user: a node token

	t.Run("certificates for keys made here", func(t *testing.T) {
		js := &joinServer{c: c, user: token.NodeUser}
		got, err := RequestCerts(t.Context(), c.serve(t, js), c.caPEM, tok, node)
		if err != nil {
			t.Fatal(err)
		}
		for name, pair := range map[string][2][]byte{
			"kubelet client":  {got.KubeletClientCert, got.KubeletClientKey},
			"kubelet serving": {got.KubeletServingCert, got.KubeletServingKey},
			"kube-proxy":      {got.KubeProxyCert, got.KubeProxyKey},
		} {
			if _, err := tls.X509KeyPair(pair[0], pair[1]); err != nil {
				t.Errorf("%s: the certificate is not for the key kept: %v", name, err)
			}
		}
		if strings.Contains(string(js.raw), "PRIVATE KEY") {
			t.Error("a private key was sent")
		}
		var req joinapi.NodeCertsRequest
		if err := json.Unmarshal(js.raw, &req); err != nil || req.NodeName != node.Name || req.NodePassword != node.Password ||
			!slices.Equal(req.Addresses, node.Addresses) {
			t.Errorf("request %+v, %v", req, err)
		}
		if string(got.ServerCA) != string(c.caPEM) || string(got.ClientCA) != "client CA" || got.Cluster.ClusterDNS != "10.43.0.10" {
			t.Errorf("CAs and cluster not passed on: %+v", got.Cluster)
		}
	})
	for _, tc := range []struct {
		name string
		js   *joinServer
		tok  token.Token
		want string
	}{
		{"token rejected", &joinServer{user: token.ServerUser}, tok, "rejected the token"},
		{"refusal passed on", &joinServer{user: token.NodeUser, status: http.StatusForbidden, body: "node password mismatch"}, tok, `refused to join node "edge-1": node password mismatch`},
		{"another CA in the answer", &joinServer{user: token.NodeUser, serverCA: other.caPEM}, tok, "a CA other than the pinned one"},
		{"token user used", &joinServer{user: token.ServerUser}, token.Token{CAHash: tok.CAHash, Username: token.ServerUser, Secret: testSecret}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.js.c = c
			_, err := RequestCerts(t.Context(), c.serve(t, tc.js), c.caPEM, tc.tok, node)
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("RequestCerts = %v, want %q", err, tc.want)
			}
		})
	}
	t.Run("a server of another CA is not trusted", func(t *testing.T) {
		js := &joinServer{c: other, user: token.NodeUser}
		if _, err := RequestCerts(t.Context(), other.serve(t, js), c.caPEM, tok, node); err == nil || js.raw != nil {
			t.Fatalf("RequestCerts = %v (server saw %q), want a TLS failure before anything is sent", err, js.raw)
		}
	})
}

package join

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/kedge/kedge/server/pki"
	"github.com/kedge/kedge/shared/joinapi"
	"github.com/kedge/kedge/shared/token"
)

const agentSecret = "agent-secret-0123456789"

// fakeMembers records the learners it was asked to add.
type fakeMembers struct {
	mu    sync.Mutex
	added []string
	err   error
}

func (f *fakeMembers) AddLearner(_ context.Context, name, peerURL string) ([]joinapi.EtcdMember, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	f.added = append(f.added, name+"="+peerURL)
	return []joinapi.EtcdMember{
		{Name: "first", PeerURLs: []string{"https://192.0.2.1:2380"}},
		{Name: name, PeerURLs: []string{peerURL}},
	}, nil
}

var cluster = joinapi.Cluster{ClusterDNS: "10.43.0.10", ClusterDomain: "cluster.local", ClusterCIDR: "10.42.0.0/16", ServiceCIDR: "10.43.0.0/16"}

func newServerJoinHandler(t *testing.T) (*Handler, *fakeMembers) {
	t.Helper()
	dir := t.TempDir()
	if _, err := pki.Ensure(pki.Request{Dir: dir, APIServerDNS: []string{"localhost"}, Etcd: true}, nil); err != nil {
		t.Fatal(err)
	}
	m := &fakeMembers{}
	return &Handler{
		ServerSecret: func() string { return secret },
		AgentToken:   token.Token{Username: token.NodeUser, Secret: agentSecret},
		Cluster:      cluster,
		TLSDir:       dir,
		Members:      m,
		Log:          slog.New(slog.DiscardHandler),
	}, m
}

func serverJoinBody(mutate func(*joinapi.ServerJoinRequest)) []byte {
	r := joinapi.ServerJoinRequest{NodeName: "second", EtcdPeerURL: "https://192.0.2.2:2380", Cluster: cluster}
	if mutate != nil {
		mutate(&r)
	}
	b, _ := json.Marshal(r)
	return b
}

func TestServerJoinWithServerToken(t *testing.T) {
	h, m := newServerJoinHandler(t)
	rec := do(h, http.MethodPost, joinapi.ServerJoinPath, serverJoinBody(nil), token.ServerUser, secret)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
	}
	var resp joinapi.ServerJoinResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	shared, _ := pki.ReadShared(h.TLSDir)
	if len(resp.PKI) != len(pki.SharedFiles) {
		t.Fatalf("response has %d shared files, want %d", len(resp.PKI), len(pki.SharedFiles))
	}
	for name, b := range shared {
		if resp.PKI[name] != string(b) {
			t.Errorf("shared %s differs", name)
		}
	}
	if resp.Cluster != cluster || resp.AgentToken != agentSecret || len(resp.EtcdMembers) != 2 {
		t.Errorf("response cluster %+v, agent token set %t, members %v", resp.Cluster, resp.AgentToken == agentSecret, resp.EtcdMembers)
	}
	if len(m.added) != 1 || m.added[0] != "second=https://192.0.2.2:2380" {
		t.Fatalf("learners added: %v", m.added)
	}
	if rec.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("a response with CA keys may be cached")
	}
}

func TestServerJoinRefusalsAddNoMember(t *testing.T) {
	h, m := newServerJoinHandler(t)
	cases := []struct {
		name         string
		method       string
		body         []byte
		user, secret string
		status       int
		want         string
	}{
		{"GET", http.MethodGet, nil, "server", secret, http.StatusMethodNotAllowed, "POST"},
		{"no credentials", http.MethodPost, serverJoinBody(nil), "", "", http.StatusUnauthorized, "token rejected"},
		{"wrong token", http.MethodPost, serverJoinBody(nil), "server", "wrong-secret-0123456789", http.StatusUnauthorized, "token rejected"},
		{"agent token", http.MethodPost, serverJoinBody(nil), "node", agentSecret, http.StatusForbidden, "agent token cannot join a server"},
		{"agent token as server user", http.MethodPost, serverJoinBody(nil), "server", agentSecret, http.StatusForbidden, "agent token"},
		{"not json", http.MethodPost, []byte("{"), "server", secret, http.StatusBadRequest, "malformed"},
		{"huge body", http.MethodPost, bytes.Repeat([]byte("a"), maxBody+10), "server", secret, http.StatusBadRequest, "malformed"},
		{"bad node name", http.MethodPost, serverJoinBody(func(r *joinapi.ServerJoinRequest) { r.NodeName = "Second_1" }), "server", secret, http.StatusBadRequest, "node name"},
		{"no peer URL", http.MethodPost, serverJoinBody(func(r *joinapi.ServerJoinRequest) { r.EtcdPeerURL = "" }), "server", secret, http.StatusBadRequest, "peer URL"},
		{"http peer URL", http.MethodPost, serverJoinBody(func(r *joinapi.ServerJoinRequest) { r.EtcdPeerURL = "http://192.0.2.2:2380" }), "server", secret, http.StatusBadRequest, "peer URL"},
		{"peer host name", http.MethodPost, serverJoinBody(func(r *joinapi.ServerJoinRequest) { r.EtcdPeerURL = "https://second:2380" }), "server", secret, http.StatusBadRequest, "peer URL"},
		{"peer URL path", http.MethodPost, serverJoinBody(func(r *joinapi.ServerJoinRequest) { r.EtcdPeerURL = "https://192.0.2.2:2380/x" }), "server", secret, http.StatusBadRequest, "peer URL"},
		{"other cluster cidr", http.MethodPost, serverJoinBody(func(r *joinapi.ServerJoinRequest) { r.Cluster.ClusterCIDR = "10.50.0.0/16" }), "server", secret, http.StatusConflict, "--cluster-cidr is 10.50.0.0/16 here but 10.42.0.0/16 in the cluster"},
		{"other domain", http.MethodPost, serverJoinBody(func(r *joinapi.ServerJoinRequest) { r.Cluster.ClusterDomain = "edge.local" }), "server", secret, http.StatusConflict, "--cluster-domain"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := do(h, tc.method, joinapi.ServerJoinPath, tc.body, tc.user, tc.secret)
			if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.want) {
				t.Fatalf("status %d %q, want %d mentioning %q", rec.Code, rec.Body.String(), tc.status, tc.want)
			}
			if strings.Contains(rec.Body.String(), "PRIVATE KEY") {
				t.Fatal("a refusal carries a key")
			}
		})
	}
	if len(m.added) != 0 {
		t.Fatalf("refused joins added etcd members: %v", m.added)
	}
}

func TestServerJoinMapsMembershipErrors(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
	}{
		{ErrConflict, http.StatusConflict},
		{ErrUnavailable, http.StatusServiceUnavailable},
		{context.DeadlineExceeded, http.StatusInternalServerError},
	} {
		h, m := newServerJoinHandler(t)
		m.err = tc.err
		if rec := do(h, http.MethodPost, joinapi.ServerJoinPath, serverJoinBody(nil), "server", secret); rec.Code != tc.status {
			t.Errorf("%v: status %d, want %d", tc.err, rec.Code, tc.status)
		}
	}
	// A server without embedded etcd cannot take servers.
	h, _ := newServerJoinHandler(t)
	h.Members = nil
	if rec := do(h, http.MethodPost, joinapi.ServerJoinPath, serverJoinBody(nil), "server", secret); rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "--cluster-init") {
		t.Errorf("no etcd: %d %s", rec.Code, rec.Body.String())
	}
}

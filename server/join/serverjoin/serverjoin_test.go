package serverjoin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	agentjoin "github.com/kedge/kedge/agent/join"
	"github.com/kedge/kedge/server/join"
	"github.com/kedge/kedge/server/pki"
	"github.com/kedge/kedge/shared/joinapi"
	"github.com/kedge/kedge/shared/token"
)

// members fails the first failures calls with join.ErrUnavailable.
type members struct {
	mu       sync.Mutex
	failures int
	calls    int
}

func (m *members) AddLearner(_ context.Context, name, peerURL string) ([]joinapi.EtcdMember, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	if m.calls <= m.failures {
		return nil, fmt.Errorf("%w: busy", join.ErrUnavailable)
	}
	return []joinapi.EtcdMember{{Name: "first", PeerURLs: []string{"https://192.0.2.1:2380"}}, {Name: name, PeerURLs: []string{peerURL}}}, nil
}

var cluster = joinapi.Cluster{ClusterDNS: "10.43.0.10", ClusterDomain: "cluster.local", ClusterCIDR: "10.42.0.0/16", ServiceCIDR: "10.43.0.0/16"}

// serve runs the real join handler over TLS with a real PKI, like the
// supervisor does, and returns its URL and server token.
func serve(t *testing.T, m *members) (string, token.Token) {
	t.Helper()
	dir := t.TempDir()
	files, err := pki.Ensure(pki.Request{Dir: dir, APIServerDNS: []string{"localhost"}, APIServerIPs: []net.IP{net.ParseIP("127.0.0.1")}, Etcd: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	caBundle, _ := os.ReadFile(files.ServerCA)
	cert, err := tls.LoadX509KeyPair(files.ServingCert, files.ServingKey)
	if err != nil {
		t.Fatal(err)
	}
	server := token.Token{CAHash: token.CAHash(caBundle), Username: token.ServerUser, Secret: "server-secret-0123456789"}
	h := &join.Handler{
		CABundle: caBundle, ServerSecret: func() string { return server.Secret },
		AgentToken: token.Token{Username: token.NodeUser, Secret: "agent-secret-0123456789"},
		Cluster:    cluster, TLSDir: dir, Members: m, Log: slog.New(slog.DiscardHandler),
	}
	ts := httptest.NewUnstartedServer(h)
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts.URL, server
}

func request() joinapi.ServerJoinRequest {
	return joinapi.ServerJoinRequest{NodeName: "second", EtcdPeerURL: "https://192.0.2.2:2380", Cluster: cluster}
}

func TestJoinRetriesWhileBusy(t *testing.T) {
	m := &members{failures: 1}
	url, tok := serve(t, m)
	resp, err := Join(t.Context(), url, tok, request(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if m.calls != 2 || len(resp.EtcdMembers) != 2 || len(resp.PKI) != len(pki.SharedFiles) || resp.AgentToken == "" {
		t.Fatalf("calls %d, response members %v, %d files", m.calls, resp.EtcdMembers, len(resp.PKI))
	}
	if got := InitialCluster(resp.EtcdMembers); got != "first=https://192.0.2.1:2380,second=https://192.0.2.2:2380" {
		t.Fatalf("initial cluster %q", got)
	}
}

func TestJoinRefusalsReturnAtOnce(t *testing.T) {
	m := &members{}
	url, tok := serve(t, m)
	otherCA := tok
	otherCA.CAHash = token.CAHash([]byte("another CA"))
	agent := token.Token{CAHash: tok.CAHash, Username: token.NodeUser, Secret: "agent-secret-0123456789"}
	wrong := tok
	wrong.Secret = "wrong-secret-0123456789"
	otherCIDR := request()
	otherCIDR.Cluster.ClusterCIDR = "10.50.0.0/16"
	for _, tc := range []struct {
		name string
		tok  token.Token
		req  joinapi.ServerJoinRequest
		want string
	}{
		{"CA mismatch", otherCA, request(), agentjoin.ErrCAMismatch.Error()},
		{"agent token", agent, request(), "agent token cannot join a server"},
		{"wrong token", wrong, request(), "rejected the token"},
		{"other cluster settings", tok, otherCIDR, "--cluster-cidr is 10.50.0.0/16 here"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			_, err := Join(ctx, url, tc.tok, tc.req, slog.New(slog.DiscardHandler))
			if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want an immediate refusal mentioning %q", err, tc.want)
			}
		})
	}
	if m.calls != 0 {
		t.Fatalf("refused joins reached the etcd membership %d times", m.calls)
	}
}

package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kedge/kedge/agent/join"
	"github.com/kedge/kedge/scripts/e2e/hosts"
	"github.com/kedge/kedge/server/integration/harness"
	"github.com/kedge/kedge/shared/joinapi"
	"github.com/kedge/kedge/shared/token"
)

// TestTokensAcrossHosts: `kedge agent` joins with a bootstrap token made
// by `kedge token create` on the server host; once the token is deleted a
// new agent is refused while the joined one restarts from its credentials;
// after `kedge token rotate` the old server token is refused, the server
// restarts with the new one (its own node, which joined with the old
// token, keeps working) and an agent joins with the new one.
func TestTokensAcrossHosts(t *testing.T) {
	kedge := harness.Binary(t)
	net := hosts.NewNetwork(t)
	srvHost := net.AddHost(t, "server")
	srv := srvHost.Start(t, kedge, "server")
	waitFor(t, 120*time.Second, "the server (with its agent) to be ready", []*hosts.Proc{srv}, srv.Ready)
	admin := adminClient(t, srvHost)
	url := "https://" + srvHost.IP + ":6443"
	// kedge token on the server host: the admin kubeconfig's default path.
	tokenCmd := func(args ...string) string {
		t.Helper()
		out, stderr, err := srvHost.Exec(t, time.Minute, []string{pathEnv}, append([]string{kedge, "token"}, args...)...)
		if err != nil {
			t.Fatalf("kedge token %s: %v: %s", strings.Join(args, " "), err, stderr)
		}
		return out
	}
	boot, err := token.Parse(tokenCmd("create", "--ttl", "1h", "--description", "e2e"))
	if err != nil || !boot.IsBootstrap() {
		t.Fatalf("kedge token create: %+v, %v", boot, err)
	}

	edge := net.AddHost(t, "edge")
	a := edge.Start(t, kedge, "agent", "--server", url, "--token", boot.String())
	waitFor(t, 90*time.Second, "the agent joined with a bootstrap token", []*hosts.Proc{srv, a}, a.Ready)
	waitNodeReady(t, admin, "edge", []*hosts.Proc{srv, a})

	tokenCmd("delete", boot.BootstrapID())
	late := net.AddHost(t, "late")
	l := late.Start(t, kedge, "agent", "--server", url, "--token", boot.String())
	waitFor(t, 30*time.Second, "the deleted token refused", []*hosts.Proc{srv, l}, func() bool {
		return strings.Contains(l.Output(), "rejected bootstrap token "+boot.BootstrapID())
	})
	if err := l.Stop(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := a.Stop(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	a = edge.Start(t, kedge, "agent", "--server", url, "--token", boot.String())
	waitFor(t, 60*time.Second, "the joined agent restarted after its token was deleted", []*hosts.Proc{srv, a}, a.Ready)

	old, err := token.Read(filepath.Join(srvHost.Root, "var/lib/kedge/server/token"))
	if err != nil {
		t.Fatal(err)
	}
	tokenCmd("rotate", "--new-token", "e2e-rotated-secret-0123456789")
	next := old
	next.Secret = "e2e-rotated-secret-0123456789"
	refusedHost := net.AddHost(t, "oldtoken")
	r := refusedHost.Start(t, kedge, "agent", "--server", url, "--token", old.String())
	waitFor(t, 30*time.Second, "the old server token refused", []*hosts.Proc{srv, r}, func() bool {
		return strings.Contains(r.Output(), "the server rejected the token")
	})
	if err := r.Stop(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	// The server restarts with the rotated token (no --token given).
	if err := srv.Stop(20 * time.Second); err != nil {
		t.Fatalf("server stop: %v\n%s", err, srv.Output())
	}
	srv = srvHost.Start(t, kedge, "server")
	waitFor(t, 120*time.Second, "the server restarted after the rotation", []*hosts.Proc{srv}, srv.Ready)
	waitNodeReady(t, admin, "server", []*hosts.Proc{srv})
	newHost := net.AddHost(t, "newtoken")
	n := newHost.Start(t, kedge, "agent", "--server", url, "--token", next.String())
	waitFor(t, 90*time.Second, "an agent joined with the rotated token", []*hosts.Proc{srv, n, a}, n.Ready)
	if _, err := admin.CoreV1().Nodes().Get(t.Context(), "newtoken", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	waitNodeReady(t, admin, "edge", []*hosts.Proc{srv, a, n})
}

// TestServerTokenRotationAcrossServers: three servers on embedded etcd
// (three, so that one may be down). A rotation on server 1 reaches the
// others at once (their join APIs and token files); a rotation while
// server 3 is down reaches it when it starts again, before it serves the
// join API.
func TestServerTokenRotationAcrossServers(t *testing.T) {
	kedge := harness.Binary(t)
	net := hosts.NewNetwork(t)
	h1, h2, h3 := net.AddHost(t, "server1"), net.AddHost(t, "server2"), net.AddHost(t, "server3")
	s1 := h1.Start(t, kedge, "server", "--disable-agent", "--cluster-init")
	waitForServerWithin(t, h1, s1, 90*time.Second)
	first, err := token.Read(filepath.Join(h1.Root, "var/lib/kedge/server/token"))
	if err != nil {
		t.Fatal(err)
	}
	url1 := "https://" + h1.IP + ":6443"
	s2 := h2.Start(t, kedge, "server", "--disable-agent", "--server", url1, "--token", first.String())
	s3 := h3.Start(t, kedge, "server", "--disable-agent", "--server", url1, "--token", first.String())
	waitForServerWithin(t, h2, s2, 4*time.Minute)
	waitForServerWithin(t, h3, s3, 4*time.Minute)
	ca, err := os.ReadFile(filepath.Join(h1.Root, "var/lib/kedge/server/tls/server-ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	// joinStatus is h's join API's answer to secret as the server token:
	// 401 refused; 400 (the request is empty) means accepted.
	joinStatus := func(h *hosts.Host, secret string) int {
		code, _, err := join.PostPinned(t.Context(), "https://"+h.IP+":6443", joinapi.NodeCertsPath, ca, token.ServerUser, secret,
			joinapi.NodeCertsRequest{}, 10*time.Second)
		if err != nil {
			return 0
		}
		return code
	}
	fileOn := func(h *hosts.Host) string {
		tok, err := token.Read(filepath.Join(h.Root, "var/lib/kedge/server/token"))
		if err != nil {
			return ""
		}
		return tok.Secret
	}
	rotate := func(secret string) {
		t.Helper()
		if _, stderr, err := h1.Exec(t, time.Minute, []string{pathEnv}, kedge, "token", "rotate", "--new-token", secret); err != nil {
			t.Fatalf("kedge token rotate on server 1: %v: %s", err, stderr)
		}
	}
	for _, h := range []*hosts.Host{h2, h3} {
		if got := joinStatus(h, first.Secret); got != http.StatusBadRequest {
			t.Fatalf("%s answers the server token with %d, want 400 (accepted, empty request)", h.Name, got)
		}
	}

	const second = "rotated-on-server1-0123456789"
	rotate(second)
	for _, h := range []*hosts.Host{h2, h3} {
		waitFor(t, 30*time.Second, h.Name+" to follow the rotation", []*hosts.Proc{s1, s2, s3}, func() bool {
			return joinStatus(h, first.Secret) == http.StatusUnauthorized && joinStatus(h, second) == http.StatusBadRequest && fileOn(h) == second
		})
	}

	// Server 3 is down during the next rotation.
	if err := s3.Stop(20 * time.Second); err != nil {
		t.Fatalf("server 3 stop: %v\n%s", err, s3.Output())
	}
	const third = "rotated-while-down-0123456789"
	rotate(third)
	if fileOn(h3) != second {
		t.Fatal("server 3's file changed while it was down")
	}
	stale := first
	stale.Secret = second // what server 3's file holds
	s3 = h3.Start(t, kedge, "server", "--disable-agent", "--server", url1, "--token", stale.String())
	waitForServerWithin(t, h3, s3, 2*time.Minute)
	// Serving means following: the stale token is never accepted.
	if got := joinStatus(h3, second); got != http.StatusUnauthorized {
		t.Fatalf("restarted server 3 answers the token rotated away while it was down with %d, want 401", got)
	}
	if got := joinStatus(h3, third); got != http.StatusBadRequest || fileOn(h3) != third {
		t.Fatalf("restarted server 3: the token in force answers %d (want 400), its file holds it: %t", got, fileOn(h3) == third)
	}
	// Its config still names the replaced token: the next restart works
	// too, with the token in force and a warning.
	if err := s3.Stop(20 * time.Second); err != nil {
		t.Fatalf("server 3 stop: %v\n%s", err, s3.Output())
	}
	s3 = h3.Start(t, kedge, "server", "--disable-agent", "--server", url1, "--token", stale.String())
	waitForServerWithin(t, h3, s3, 2*time.Minute)
	if !strings.Contains(s3.Output(), "--token is a server token that kedge token rotate replaced") {
		t.Fatalf("no warning about the replaced --token:\n%s", s3.Output())
	}
	if got := joinStatus(h3, third); got != http.StatusBadRequest || fileOn(h3) != third {
		t.Fatalf("server 3 restarted with the replaced --token: the token in force answers %d (want 400)", got)
	}
}

package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kedge/kedge/scripts/e2e/hosts"
	"github.com/kedge/kedge/server/integration/harness"
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

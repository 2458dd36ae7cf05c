// Package e2e runs the kedge binary as several hosts (network, mount and
// cgroup namespaces on a private bridge) and checks what crosses them.
package e2e

import (
	"crypto/tls"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kedge/kedge/scripts/e2e/hosts"
	"github.com/kedge/kedge/server/integration/harness"
)

func waitFor(t *testing.T, timeout time.Duration, what string, procs []*hosts.Proc, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !check() {
		for _, p := range procs {
			if err, done := p.Exited(); done {
				t.Fatalf("a process exited (%v) while waiting for %s:\n%s", err, what, p.Output())
			}
		}
		if time.Now().After(deadline) {
			var out []string
			for _, p := range procs {
				out = append(out, p.Output())
			}
			t.Fatalf("timed out waiting for %s; output:\n%s", what, strings.Join(out, "\n---\n"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestAgentJoinsServerAcrossHosts starts a server and an agent on two hosts
// and checks that the agent joins over the bridge and runs containerd in
// its own cgroup namespace.
func TestAgentJoinsServerAcrossHosts(t *testing.T) {
	kedge := harness.Binary(t)
	net := hosts.NewNetwork(t)
	srvHost := net.AddHost(t, "server")
	agentHost := net.AddHost(t, "agent")

	srv := srvHost.Start(t, kedge, "server", "--disable-agent")
	insecure := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	waitFor(t, 90*time.Second, "the server's /readyz over the bridge", []*hosts.Proc{srv}, func() bool {
		resp, err := insecure.Get("https://" + srvHost.IP + ":6443/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	tokenBytes, err := os.ReadFile(filepath.Join(srvHost.Root, "var/lib/kedge/server/token"))
	if err != nil {
		t.Fatal(err)
	}
	agent := agentHost.Start(t, kedge, "agent", "--server", "https://"+srvHost.IP+":6443", "--token", strings.TrimSpace(string(tokenBytes)))
	waitFor(t, 90*time.Second, "the agent to be ready", []*hosts.Proc{srv, agent}, func() bool {
		return strings.Contains(agent.Output(), "kedge agent is ready")
	})
	if !strings.Contains(agent.Output(), `node=agent`) && !strings.Contains(agent.Output(), "joined") {
		t.Fatalf("agent log lacks the join:\n%s", agent.Output())
	}
	// The agent's state went to its own host's directories.
	if _, err := os.Stat(filepath.Join(agentHost.Root, "var/lib/kedge/agent/cred/kubelet-client.crt")); err != nil {
		t.Fatalf("agent credentials not in the agent host's /var/lib/kedge: %v", err)
	}
	if _, err := os.Stat(filepath.Join(agentHost.Root, "run/kedge/containerd/containerd.sock")); err != nil {
		t.Fatalf("containerd socket not in the agent host's /run: %v", err)
	}
	if err := agent.Stop(15 * time.Second); err != nil {
		t.Fatalf("agent stop: %v\n%s", err, agent.Output())
	}
	if err := srv.Stop(15 * time.Second); err != nil {
		t.Fatalf("server stop: %v\n%s", err, srv.Output())
	}
}

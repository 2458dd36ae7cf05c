package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/kedge/kedge/scripts/e2e/hosts"
)

// checkAgentUsesLB checks that the agent's kubelet and kube-proxy talk to
// the agent's local API cache (127.0.0.1:6445), which goes through the
// agent's load balancer on 127.0.0.1:6444, and that the balancer learned
// the server from the EndpointSlices and stored it.
func checkAgentUsesLB(t *testing.T, agentHost, srvHost *hosts.Host, agent *hosts.Proc) {
	t.Helper()
	// The balancer stores the servers it learned in lb-servers.json.
	stateFile := filepath.Join(agentHost.Root, "var/lib/kedge/agent/lb-servers.json")
	var b []byte
	var stored struct{ Servers []string }
	waitFor(t, 30*time.Second, "the load balancer to learn and store the server", []*hosts.Proc{agent}, func() bool {
		var err error
		b, err = os.ReadFile(stateFile)
		return err == nil && json.Unmarshal(b, &stored) == nil && slices.Contains(stored.Servers, srvHost.IP+":6443")
	})
	cred := filepath.Join(agentHost.Root, "var/lib/kedge/agent/cred")
	for _, name := range []string{"kubelet.kubeconfig", "kube-proxy.kubeconfig"} {
		cfg, err := clientcmd.LoadFromFile(filepath.Join(cred, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cfg.Clusters {
			if c.Server != "https://127.0.0.1:6445" {
				t.Errorf("%s points at %s, want the local API cache https://127.0.0.1:6445", name, c.Server)
			}
		}
	}
	// The node's clients hold connections to the cache, the cache to the
	// balancer, and the balancer to the server.
	out, err := exec.Command("ip", "netns", "exec", agentHost.NS, "ss", "-Htn", "state", "established").CombinedOutput()
	if err != nil {
		t.Fatalf("ss: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "127.0.0.1:6445") || !strings.Contains(string(out), "127.0.0.1:6444") || !strings.Contains(string(out), srvHost.IP+":6443") {
		t.Errorf("want connections to 127.0.0.1:6445, 127.0.0.1:6444 and %s:6443 on the agent host; ss says:\n%s", srvHost.IP, out)
	}
}

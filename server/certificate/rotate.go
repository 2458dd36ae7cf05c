package certificate

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kedge/kedge/server/pki"
	"github.com/kedge/kedge/shared/atomicfile"
	"github.com/kedge/kedge/shared/datadir"
)

// services maps `kedge certificate rotate --service` names to the server's
// leaf certificates (pki file names). The node's are "kubelet" and
// "kube-proxy".
var services = map[string][]string{
	"admin":              {"client-admin"},
	"api-server":         {"serving-kube-apiserver", "client-kube-apiserver"},
	"scheduler":          {"client-scheduler"},
	"controller-manager": {"client-controller"},
	"auth-proxy":         {"client-auth-proxy"},
	"metrics-server":     {"serving-metrics-server"},
	"etcd":               {"etcd/server", "etcd/peer", "etcd/client"},
}

// nodeServices are renewed by the node's agent, through the join API.
var nodeServices = []string{"kubelet", "kube-proxy"}

// ServiceNames lists every --service name.
func ServiceNames() []string {
	return slices.Sorted(slices.Values(append(slices.Collect(maps.Keys(services)), nodeServices...)))
}

// rotate re-issues the certificates of the given services now (all that
// exist in dataDir when none are given): the server's in place, signed by
// its CAs with the same keys (a running server uses them at once; the admin
// kubeconfig follows within a minute), the node's by asking its agent,
// which renews them through the join API within a minute, or at its next
// start. It checks every name before it writes anything.
func rotate(w io.Writer, dataDir string, names []string, now time.Time) error {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	tlsDir := datadir.NewServer(abs).TLSDir
	agent := datadir.NewAgent(abs, datadir.DefaultRunDir)
	var leaves []string
	node := false
	for _, name := range names {
		switch {
		case slices.Contains(nodeServices, name):
			node = true
		case services[name] != nil:
			leaves = append(leaves, services[name]...)
		default:
			return fmt.Errorf("--service %q is not one of %s", name, strings.Join(ServiceNames(), ", "))
		}
	}
	hasNode := exists(filepath.Join(agent.CredDir, "kubelet-client.crt"))
	if len(names) == 0 {
		for _, n := range ServiceNames() {
			for _, leaf := range services[n] {
				if exists(filepath.Join(tlsDir, leaf+".crt")) {
					leaves = append(leaves, leaf)
				}
			}
		}
		node = hasNode
		if len(leaves) == 0 && !node {
			return fmt.Errorf("no certificates under --data-dir %s (server/tls or agent/cred)", abs)
		}
	}
	if node && !hasNode {
		return fmt.Errorf("no node certificates under %s", agent.CredDir)
	}
	slices.Sort(leaves)
	issued, err := pki.Reissue(tlsDir, slices.Compact(leaves), now)
	for _, is := range issued {
		rel, _ := filepath.Rel(abs, is.CertFile)
		fmt.Fprintf(w, "reissued %s\n", rel)
	}
	if err != nil {
		return err
	}
	if node {
		if err := atomicfile.Write(agent.RenewRequest, []byte(now.UTC().Format(time.RFC3339)+"\n"), 0o600); err != nil {
			return err
		}
		fmt.Fprintf(w, "asked the node's agent to renew its certificates (within a minute, or at its next start)\n")
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, os.ErrNotExist)
}

package harness

import (
	"path/filepath"
	"strconv"
	"testing"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kedge/kedge/agent/join"
	"github.com/kedge/kedge/server/config"
	"github.com/kedge/kedge/shared/token"
)

// AgentSecret is the agent token's secret of servers started by
// StartJoinable.
const AgentSecret = "agent-secret-0123456789"

// Joinable is a running in-process server that nodes join.
type Joinable struct {
	*Server
	// URL is the server's public port (the supervisor).
	URL string
	// ServerToken is the server's token; AgentToken has AgentSecret and
	// the same CA hash.
	ServerToken, AgentToken token.Token
	// CA is the server CA fetched and pinned with AgentToken.
	CA []byte
}

// StartJoinable starts c in process with AgentSecret as its agent token
// and fetches its CA as an agent does.
func StartJoinable(t testing.TB, c config.Config) *Joinable {
	t.Helper()
	c.AgentToken = AgentSecret
	j := &Joinable{Server: StartInProcess(t, c), URL: "https://127.0.0.1:" + strconv.Itoa(c.HTTPSListenPort)}
	var err error
	if j.ServerToken, err = token.Read(filepath.Join(c.DataDir, "server", "token")); err != nil {
		t.Fatal(err)
	}
	j.AgentToken = token.Token{CAHash: j.ServerToken.CAHash, Username: token.NodeUser, Secret: AgentSecret}
	if j.CA, err = join.FetchCA(t.Context(), j.URL, j.AgentToken); err != nil {
		t.Fatal(err)
	}
	return j
}

// Join requests node's certificates with AgentToken.
func (j *Joinable) Join(t testing.TB, node join.Node) *join.Certs {
	t.Helper()
	certs, err := join.RequestCerts(t.Context(), j.URL, j.CA, j.AgentToken, node)
	if err != nil {
		t.Fatalf("join %s: %v", node.Name, err)
	}
	return certs
}

// ClientAs is a client of the server's public port with the given identity.
func (j *Joinable) ClientAs(cert, key []byte) kubernetes.Interface {
	return kubernetes.NewForConfigOrDie(&rest.Config{Host: j.URL,
		TLSClientConfig: rest.TLSClientConfig{CAData: j.CA, CertData: cert, KeyData: key}})
}

package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	agentconfig "github.com/kedge/kedge/agent/config"
	"github.com/kedge/kedge/server/config"
	"github.com/kedge/kedge/server/control"
	"github.com/kedge/kedge/server/pki"
	"github.com/kedge/kedge/server/secretsencrypt"
	"github.com/kedge/kedge/server/token/servertoken"
	"github.com/kedge/kedge/server/tunnel"
	"github.com/kedge/kedge/shared/datadir"
	"github.com/kedge/kedge/shared/kubeconfig"
	"github.com/kedge/kedge/shared/token"
)

// prepared is what Run makes before any component starts: the data dir's
// certificates, tokens, kubeconfigs and component files, the loopback
// listener of the egress proxy, and the clients of the server's own
// controllers.
type prepared struct {
	cc  *config.Completed
	log *slog.Logger
	tls *pki.Files
	// tlsRequest is what tls was ensured with; the renewal repeats it.
	tlsRequest pki.Request
	// initialCluster is the embedded etcd's initial cluster when this
	// server joined others (--server), else "".
	initialCluster string
	caBundle       []byte
	serverToken    token.Token
	agentToken     token.Token
	// liveToken is the server token in force (see servertoken.Sync).
	liveToken *servertoken.Live
	serverCA  *pki.CA
	clientCA  *pki.CA
	// egress is where kube-apiserver's CONNECT proxy (tunnel.Server) listens.
	egress  net.Listener
	restCfg *rest.Config
	client  kubernetes.Interface
	// encryptionConfig is kube-apiserver's encryption provider config, "" for none.
	encryptionConfig string
}

// prepare writes what the components read at start, in the order each step
// needs the previous one. It returns nil, nil when ctx ended while this
// server was joining others.
func prepare(ctx context.Context, cc *config.Completed, log *slog.Logger) (*prepared, error) {
	p := &prepared{cc: cc, log: log}
	// First, so that a damaged file stops the start before anything is written.
	var err error
	if _, statErr := os.Stat(cc.Paths.EncryptionConfig); cc.Server != "" && cc.SecretsEncryption && errors.Is(statErr, os.ErrNotExist) {
		// A key of its own would store Secrets the other servers cannot read.
		return nil, fmt.Errorf("--secrets-encryption with --server: copy %s from the server you join to this host first (servers must share the key)", cc.Paths.EncryptionConfig)
	}
	if p.encryptionConfig, err = secretsencrypt.Ensure(ctx, cc.Paths.EncryptionConfig, cc.SecretsEncryption, time.Now()); err != nil {
		return nil, err
	}
	if p.encryptionConfig != "" && !cc.SecretsEncryption {
		log.Warn("Secrets encryption is off, but its keys stay in the encryption config to read Secrets written while it was on; new Secrets are stored in plain text", "file", p.encryptionConfig)
	}
	if cc.Server != "" {
		if p.initialCluster, err = joinCluster(ctx, cc, log); err != nil {
			if ctx.Err() != nil {
				return nil, nil
			}
			return nil, err
		}
	}
	if err := p.credentials(); err != nil {
		return nil, err
	}
	// kube-apiserver reaches kubelets and pods through this CONNECT proxy
	// (tunnel.Server), which uses agents' reverse tunnels.
	egress, err := tunnel.ListenEgress(cc.Paths.EgressSocket)
	if err != nil {
		return nil, fmt.Errorf("egress proxy: %w", err)
	}
	p.egress = egress
	if err := p.files(); err != nil {
		egress.Close()
		return nil, err
	}
	return p, nil
}

// credentials ensures the certificates and the two join tokens, and loads
// the CAs that sign nodes' certificates.
func (p *prepared) credentials() error {
	cc := p.cc
	p.tlsRequest = pki.Request{
		Dir:          cc.Paths.TLSDir,
		APIServerDNS: cc.APIServerDNS,
		APIServerIPs: cc.APIServerIPs,
		Etcd:         cc.Datastore == config.DatastoreEmbeddedEtcd,
		EtcdDNS:      []string{"localhost", cc.NodeName},
		EtcdIPs:      []net.IP{net.ParseIP("127.0.0.1"), cc.NodeIP},
		// The metrics API's serving certificate (server/metrics.go).
		MetricsServerDNS: metricsDNS(cc),
	}
	tls, err := pki.Ensure(p.tlsRequest, p.log)
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	p.tls = tls
	if p.caBundle, err = os.ReadFile(tls.ServerCA); err != nil {
		return err
	}
	if p.serverToken, err = token.Ensure(cc.Paths.TokenFile, cc.GivenToken, p.caBundle); err != nil {
		return err
	}
	if cc.GivenToken.Secret != "" && cc.GivenToken.Secret != p.serverToken.Secret {
		p.log.Warn("--token is a server token that kedge token rotate replaced; using the one in force, stored in the token file (put it in this server's config)",
			"file", cc.Paths.TokenFile)
	}
	if p.agentToken, err = token.EnsureAgent(cc.Paths.AgentTokenFile, cc.GivenAgentToken, p.caBundle); err != nil {
		return err
	}
	if p.serverCA, err = pki.LoadCA(tls.ServerCA, tls.ServerCAKey); err != nil {
		return err
	}
	p.clientCA, err = pki.LoadCA(tls.ClientCA, tls.ClientCAKey)
	return err
}

// files writes the components' files and the admin kubeconfig, and makes
// the client of the server's own controllers.
func (p *prepared) files() error {
	cc, tls := p.cc, p.tls
	if err := writeComponentFiles(cc, tls); err != nil {
		return err
	}
	if err := p.writeAdminKubeconfig(); err != nil {
		return err
	}
	// The server's own clients talk to the apiserver's loopback port, so
	// they do not depend on the supervisor.
	internal := kubeconfig.Spec{Server: control.APIServerURL(cc), CAFile: tls.ServerCA, CertFile: tls.AdminCert, KeyFile: tls.AdminKey}
	internalConfig, err := kubeconfig.Build(internal)
	if err != nil {
		return err
	}
	if p.restCfg, err = clientcmd.NewDefaultClientConfig(*internalConfig, nil).ClientConfig(); err != nil {
		return err
	}
	p.client, err = kubernetes.NewForConfig(p.restCfg)
	return err
}

// writeAdminKubeconfig writes the admin kubeconfig (--write-kubeconfig),
// which embeds the admin certificate, unless it is unchanged.
func (p *prepared) writeAdminKubeconfig() error {
	cc, tls := p.cc, p.tls
	admin := kubeconfig.Spec{Server: control.LocalURL(cc), CAFile: tls.ServerCA, CertFile: tls.AdminCert, KeyFile: tls.AdminKey, Embed: true}
	if err := kubeconfig.Write(cc.WriteKubeconfig, admin, cc.KubeconfigMode); err != nil {
		return fmt.Errorf("--write-kubeconfig: %w", err)
	}
	return nil
}

// writeComponentFiles writes the components' kubeconfigs and config files.
func writeComponentFiles(cc *config.Completed, tls *pki.Files) error {
	if err := os.MkdirAll(cc.Paths.EtcDir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(cc.Paths.AuthenticationConfig, []byte(control.AuthenticationConfig), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(cc.Paths.EgressSelectorConfig, []byte(control.EgressSelectorConfig(cc.Paths.EgressSocket)), 0o600); err != nil {
		return err
	}
	local := control.APIServerURL(cc)
	for path, spec := range map[string]kubeconfig.Spec{
		cc.Paths.SchedulerKubeconfig:  {Server: local, CAFile: tls.ServerCA, CertFile: tls.SchedulerCert, KeyFile: tls.SchedulerKey},
		cc.Paths.ControllerKubeconfig: {Server: local, CAFile: tls.ServerCA, CertFile: tls.ControllerCert, KeyFile: tls.ControllerKey},
	} {
		if err := kubeconfig.Write(path, spec, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// readyz returns a check that GETs /readyz with client.
func readyz(client kubernetes.Interface) func(context.Context) error {
	return func(ctx context.Context) error {
		if _, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx); err != nil {
			return fmt.Errorf("readyz: %w", err)
		}
		return nil
	}
}

// embeddedAgent is the configuration of the server's own node: it joins this
// server over loopback with the server token, like any other agent, with
// the node options, name and IP the server already checked and resolved.
func embeddedAgent(cc *config.Completed, serverToken token.Token) (*agentconfig.Completed, error) {
	c := agentconfig.Config{
		NodeOptions:    cc.NodeOptions,
		Server:         "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(cc.HTTPSListenPort)),
		DataDir:        cc.DataDir,
		RunDir:         datadir.DefaultRunDir,
		RegistriesFile: agentconfig.DefaultRegistriesFile, // the server has no --registries-file flag yet
		Debug:          cc.Debug,
		// No load balancer: this node talks to its own server, whose
		// apiserver listens on 127.0.0.1:6444 (--apiserver-port) already.
		LBPort: 0,
	}
	node, err := c.CompleteNode(serverToken, cc.NodeName, cc.NodeIP)
	if err != nil {
		return nil, fmt.Errorf("embedded agent: %w", err)
	}
	return node, nil
}

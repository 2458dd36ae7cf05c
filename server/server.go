// Package server runs a kedge control-plane node: datastore, PKI, the
// upstream kube-apiserver, kube-scheduler and kube-controller-manager, and
// the admin kubeconfig.
package server

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kedge/kedge/agent"
	agentconfig "github.com/kedge/kedge/agent/config"
	"github.com/kedge/kedge/embedded/apiserver"
	"github.com/kedge/kedge/embedded/cloudnode"
	"github.com/kedge/kedge/embedded/component"
	"github.com/kedge/kedge/embedded/controllermanager"
	"github.com/kedge/kedge/embedded/etcdcheck"
	"github.com/kedge/kedge/embedded/memtune"
	"github.com/kedge/kedge/embedded/scheduler"
	"github.com/kedge/kedge/embedded/tainteviction"
	"github.com/kedge/kedge/server/config"
	"github.com/kedge/kedge/server/control"
	"github.com/kedge/kedge/server/controllers/dnsendpoints"
	"github.com/kedge/kedge/server/controllers/endpoints"
	"github.com/kedge/kedge/server/controllers/kedgecloud"
	"github.com/kedge/kedge/server/controllers/leader"
	"github.com/kedge/kedge/server/controllers/localpath"
	"github.com/kedge/kedge/server/controllers/rbac"
	"github.com/kedge/kedge/server/controllers/servicelb"
	"github.com/kedge/kedge/server/datastore"
	"github.com/kedge/kedge/server/datastore/etcdcluster"
	"github.com/kedge/kedge/server/join"
	"github.com/kedge/kedge/server/join/nodepassword"
	"github.com/kedge/kedge/server/pki"
	"github.com/kedge/kedge/server/supervisor"
	"github.com/kedge/kedge/server/tunnel"
	"github.com/kedge/kedge/shared/joinapi"
	"github.com/kedge/kedge/shared/kubeconfig"
	"github.com/kedge/kedge/shared/sdnotify"
	"github.com/kedge/kedge/shared/token"
)

// ControllersLease (in kube-system) is held by the server that runs the
// scheduler and the controller-manager.
const ControllersLease = "kedge-controllers"

// Run brings the control plane up and serves until ctx is cancelled, then
// stops every component in reverse order. It returns the first failure.
// Problems with the host (data dir, ports) are reported before anything in
// the data dir is touched.
func Run(ctx context.Context, cc *config.Completed, log *slog.Logger) error {
	notifier := sdnotify.Take()
	if err := preflight(cc); err != nil {
		return err
	}
	var initialCluster string
	if cc.Server != "" {
		var err error
		if initialCluster, err = joinCluster(ctx, cc, log); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	tls, err := pki.Ensure(pki.Request{
		Dir:          cc.Paths.TLSDir,
		APIServerDNS: cc.APIServerDNS,
		APIServerIPs: cc.APIServerIPs,
		Etcd:         cc.Datastore == config.DatastoreEmbeddedEtcd,
		EtcdDNS:      []string{"localhost", cc.NodeName},
		EtcdIPs:      []net.IP{net.ParseIP("127.0.0.1"), cc.NodeIP},
		// The metrics API's serving certificate (server/metrics.go).
		MetricsServerDNS: metricsDNS(cc),
	}, log)
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	caBundle, err := os.ReadFile(tls.ServerCA)
	if err != nil {
		return err
	}
	serverToken, err := token.Ensure(cc.Paths.TokenFile, cc.GivenToken, caBundle)
	if err != nil {
		return err
	}
	agentToken, err := token.EnsureAgent(cc.Paths.AgentTokenFile, cc.GivenAgentToken, caBundle)
	if err != nil {
		return err
	}

	// kube-apiserver reaches kubelets and pods through this loopback
	// CONNECT proxy (tunnel.Server), which uses agents' reverse tunnels.
	egress, err := listenEgress(control.EgressProxyAddr(cc))
	if err != nil {
		return fmt.Errorf("egress proxy: %w", err)
	}
	defer egress.Close()
	if err := writeComponentFiles(cc, tls, egress.Addr().String()); err != nil {
		return err
	}
	admin := kubeconfig.Spec{Server: control.LocalURL(cc), CAFile: tls.ServerCA, CertFile: tls.AdminCert, KeyFile: tls.AdminKey, Embed: true}
	if err := kubeconfig.Write(cc.WriteKubeconfig, admin, cc.KubeconfigMode); err != nil {
		return fmt.Errorf("--write-kubeconfig: %w", err)
	}
	// The server's own clients talk to the apiserver's loopback port, so
	// they do not depend on the supervisor.
	internal := kubeconfig.Spec{Server: control.APIServerURL(cc), CAFile: tls.ServerCA, CertFile: tls.AdminCert, KeyFile: tls.AdminKey}
	internalConfig, err := kubeconfig.Build(internal)
	if err != nil {
		return err
	}
	restCfg, err := clientcmd.NewDefaultClientConfig(*internalConfig, nil).ClientConfig()
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return err
	}
	serverCA, err := pki.LoadCA(tls.ServerCA, tls.ServerCAKey)
	if err != nil {
		return err
	}
	clientCA, err := pki.LoadCA(tls.ClientCA, tls.ClientCAKey)
	if err != nil {
		return err
	}
	addons, err := manifestDeployer(cc, restCfg, client, caBundle, log)
	if err != nil {
		return err
	}

	metrics, metricsRoute, err := metricsAPI(cc, tls, restCfg, log)
	if err != nil {
		return fmt.Errorf("metrics API: %w", err)
	}

	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(clientCA.Cert)
	tunnels := &tunnel.Server{ClientCA: clientCAs, Listener: egress, CertFile: tls.ServingCert, KeyFile: tls.ServingKey,
		Client: client, Log: log.With("component", "tunnel")}

	store, storage := datastore.New(cc, tls, initialCluster, log)
	in := control.Inputs{Config: cc, TLS: tls, Storage: storage}
	components := []component.Component{store}
	// members adds joining servers to the embedded etcd and promotes them.
	var members join.Members
	if cc.Datastore == config.DatastoreEmbeddedEtcd {
		m := &etcdcluster.Cluster{
			Target: etcdcheck.Target{Endpoints: storage.Servers, CAFile: storage.CAFile, CertFile: storage.CertFile, KeyFile: storage.KeyFile},
			Log:    log.With("component", "etcd-membership"),
		}
		members = m
		components = append(components, m)
	}
	go func() {
		<-ctx.Done()
		_ = notifier.Stopping()
	}()
	start := time.Now()
	runner := &component.Runner{
		Log:          log,
		ReadyTimeout: 2 * time.Minute,
		StopTimeout:  10 * time.Second,
		// Ends before main's 15 s grace, also when etcd lost quorum and stops hang.
		StopBudget: 12 * time.Second,
		OnReady: func() {
			log.Info("kedge server is ready",
				"seconds", fmt.Sprintf("%.1f", time.Since(start).Seconds()),
				"kubeconfig", cc.WriteKubeconfig,
				"join", fmt.Sprintf("kedge agent --server https://%s --token-file %s",
					net.JoinHostPort(cc.AdvertiseIP.String(), strconv.Itoa(cc.HTTPSListenPort)), cc.Paths.TokenFile))
			if n, err := memtune.ReleaseExecutablePages(); err != nil {
				log.Debug("could not release start-up pages", "error", err)
			} else {
				log.Debug("released start-up pages", "bytes", n)
			}
			if err := notifier.Ready(); err != nil {
				log.Warn("cannot tell systemd that kedge is ready", "error", err)
			}
		},
	}
	api := &apiserver.APIServer{Args: control.APIServerArgs(in), Ready: readyz(client)}
	// SQLite is one server's own; any other datastore may be shared by
	// servers, and then one of them, elected, runs the controllers.
	controllers := []component.Component{
		&scheduler.Scheduler{Args: control.SchedulerArgs(in)},
		&controllermanager.ControllerManager{Args: control.ControllerManagerArgs(in)},
		&tainteviction.Controller{Client: client, Log: log.With("component", tainteviction.ControllerName)},
		// Every kubelet runs with --cloud-provider=external; this sets the
		// Nodes' addresses and removes their uninitialized taint.
		&cloudnode.Controller{Client: client, Cloud: kedgecloud.Provider{}},
		// LoadBalancer Services answer on the nodes' IPs (kube-proxy).
		&servicelb.Controller{Client: client, Disabled: cc.AddonDisabled("servicelb"), Reserved: reservedPorts(cc),
			Log: log.With("component", "servicelb")},
	}
	if !cc.AddonDisabled("coredns") {
		// One kube-dns EndpointSlice per node, naming the DNS in its agent.
		controllers = append(controllers, &dnsendpoints.Controller{Client: client, Log: log.With("component", "cluster-dns-endpoints")})
	}
	if !cc.AddonDisabled("local-storage") {
		controllers = append(controllers, &localpath.Provisioner{Client: client, Log: log.With("component", "local-path-provisioner")})
	}
	if cc.Datastore != config.DatastoreSQLite {
		controllers = []component.Component{&leader.Elected{
			Client: client, Namespace: metav1.NamespaceSystem, Lease: ControllersLease, Identity: cc.NodeName,
			Components: controllers, Log: log.With("component", "leader-election"),
		}}
	}
	components = append(components,
		api,
		&supervisor.Supervisor{
			Addr:     net.JoinHostPort(cc.BindAddress, strconv.Itoa(cc.HTTPSListenPort)),
			CertFile: tls.ServingCert, KeyFile: tls.ServingKey, CAFile: tls.ServerCA,
			API:    api.Handler,
			Tunnel: tunnels,
			Named:  metricsRoute,
			Join: &join.Handler{
				CABundle: caBundle, ServerCA: serverCA, ClientCA: clientCA,
				ServerToken: serverToken, AgentToken: agentToken,
				Passwords: &nodepassword.Store{Client: client},
				Cluster: joinapi.Cluster{ClusterDNS: cc.ClusterDNS, ClusterDomain: cc.ClusterDomain,
					ClusterCIDR: cc.ClusterCIDR, ServiceCIDR: cc.ServiceCIDR},
				TLSDir:  cc.Paths.TLSDir,
				Members: members,
				Log:     log.With("component", "join"),
			},
			Log: log.With("component", "supervisor"),
		},
		tunnels,
		&endpoints.Reconciler{Client: client, Server: cc.NodeName, IP: cc.AdvertiseIP, Port: int32(cc.HTTPSListenPort), Log: log},
		&rbac.Reconciler{Client: client, Log: log.With("component", "rbac")},
		addons,
	)
	components = append(components, metrics...)
	components = append(components, controllers...)
	if !cc.DisableAgent {
		node, err := embeddedAgent(cc, serverToken)
		if err != nil {
			return err
		}
		// The server's own kubelet is reached directly, without a tunnel.
		components = append(components, &agent.Agent{Config: node, Log: log, NoTunnel: true})
	}
	err = runner.Run(ctx, components...)
	if err == nil {
		log.Info("kedge server stopped")
	}
	return err
}

// preflight fails fast, before anything is written, on a data dir that
// cannot be written and on ports that are taken.
func preflight(cc *config.Completed) error {
	if err := os.MkdirAll(cc.Paths.ServerDir, 0o700); err != nil {
		return fmt.Errorf("--data-dir %s is not writable: %w", cc.DataDir, errors.Unwrap(err))
	}
	probe, err := os.CreateTemp(cc.Paths.ServerDir, ".write-check-*")
	if err != nil {
		return fmt.Errorf("--data-dir %s is not writable: %w", cc.DataDir, errors.Unwrap(err))
	}
	probe.Close()
	os.Remove(probe.Name())

	ports := []struct {
		flag string
		addr string
	}{
		{"--https-listen-port", net.JoinHostPort(cc.BindAddress, strconv.Itoa(cc.HTTPSListenPort))},
		{"--apiserver-port", net.JoinHostPort("127.0.0.1", strconv.Itoa(cc.APIServerPort))},
	}
	if cc.Datastore == config.DatastoreEmbeddedEtcd {
		ports = append(ports,
			struct{ flag, addr string }{"--etcd-client-port", net.JoinHostPort("127.0.0.1", strconv.Itoa(cc.EtcdClientPort))},
			struct{ flag, addr string }{"--etcd-peer-port", net.JoinHostPort(cc.NodeIP.String(), strconv.Itoa(cc.EtcdPeerPort))})
	}
	for _, p := range ports {
		l, err := net.Listen("tcp", p.addr)
		if err != nil {
			return fmt.Errorf("%s: cannot listen on %s: %w", p.flag, p.addr, errors.Unwrap(err))
		}
		l.Close()
	}
	return nil
}

// listenEgress listens on loopback for the egress proxy: on prev, the
// address of the previous start, if it is free (so the egress selector file
// stays the same), else on a free port.
func listenEgress(prev string) (net.Listener, error) {
	if prev != "" {
		if l, err := net.Listen("tcp", prev); err == nil {
			return l, nil
		}
	}
	return net.Listen("tcp", "127.0.0.1:0")
}

// writeComponentFiles writes the components' kubeconfigs and config files.
func writeComponentFiles(cc *config.Completed, tls *pki.Files, egressProxy string) error {
	if err := os.MkdirAll(cc.Paths.EtcDir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(control.AuthenticationConfigFile(cc), []byte(control.AuthenticationConfig), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(control.EgressSelectorConfigFile(cc), []byte(control.EgressSelectorConfig(egressProxy, tls)), 0o600); err != nil {
		return err
	}
	local := control.APIServerURL(cc)
	for path, spec := range map[string]kubeconfig.Spec{
		control.SchedulerKubeconfig(cc):  {Server: local, CAFile: tls.ServerCA, CertFile: tls.SchedulerCert, KeyFile: tls.SchedulerKey},
		control.ControllerKubeconfig(cc): {Server: local, CAFile: tls.ServerCA, CertFile: tls.ControllerCert, KeyFile: tls.ControllerKey},
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
// server over loopback with the server token, like any other agent.
func embeddedAgent(cc *config.Completed, serverToken token.Token) (*agentconfig.Completed, error) {
	c := agentconfig.Config{
		Server:          "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(cc.HTTPSListenPort)),
		Token:           serverToken.String(),
		DataDir:         cc.DataDir,
		RunDir:          agentconfig.DefaultRunDir,
		NodeName:        cc.NodeName,
		NodeIP:          cc.NodeIP.String(),
		NodeLabels:      cc.NodeLabels,
		NodeTaints:      cc.NodeTaints,
		NodeExternalIPs: cc.NodeExternalIPs,
		KubeletArgs:     cc.KubeletArgs,
		KubeProxyArgs:   cc.KubeProxyArgs,
		ResolvConf:      cc.ResolvConf,
		// The server has no --registries-file flag yet; the agent's default applies.
		RegistriesFile: agentconfig.DefaultRegistriesFile,
		Debug:          cc.Debug,
		// No load balancer: this node talks to its own server, whose
		// apiserver listens on 127.0.0.1:6444 (--apiserver-port) already.
		LBPort: 0,
	}
	c.LocalStoragePath = cc.LocalStoragePath
	node, err := c.Complete(func() (net.IP, error) { return cc.NodeIP, nil })
	if err != nil {
		return nil, fmt.Errorf("embedded agent: %w", err)
	}
	return node, nil
}

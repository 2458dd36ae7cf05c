package server

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kedge/kedge/agent"
	agentconfig "github.com/kedge/kedge/agent/config"
	"github.com/kedge/kedge/embedded/apiserver"
	"github.com/kedge/kedge/embedded/cloudnode"
	"github.com/kedge/kedge/embedded/component"
	"github.com/kedge/kedge/embedded/controllermanager"
	"github.com/kedge/kedge/embedded/etcdcheck"
	"github.com/kedge/kedge/embedded/scheduler"
	"github.com/kedge/kedge/embedded/tainteviction"
	"github.com/kedge/kedge/server/certrenewal"
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
	"github.com/kedge/kedge/server/snapshot"
	"github.com/kedge/kedge/server/supervisor"
	"github.com/kedge/kedge/server/token/bootstrap"
	"github.com/kedge/kedge/server/token/servertoken"
	"github.com/kedge/kedge/server/tunnel"
	"github.com/kedge/kedge/shared/joinapi"
)

// components is the server's start order: each component starts once the
// one before it is ready, and they stop in reverse.
func (p *prepared) components() ([]component.Component, error) {
	cc, log := p.cc, p.log
	addons, err := manifestDeployer(cc, p.restCfg, p.client, p.caBundle, log)
	if err != nil {
		return nil, err
	}
	metrics, metricsRoute, err := metricsAPI(cc, p.tls, p.restCfg, log)
	if err != nil {
		return nil, fmt.Errorf("metrics API: %w", err)
	}
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(p.clientCA.Cert)
	tunnels := &tunnel.Server{ClientCA: clientCAs, Listener: p.egress, Client: p.client, Log: log.With("component", "tunnel")}
	store, storage := datastore.New(cc, p.tls, p.initialCluster, log)
	in := control.Inputs{Config: cc, TLS: p.tls, Storage: storage, EncryptionConfig: p.encryptionConfig}
	api := &apiserver.APIServer{Args: control.APIServerArgs(in), Ready: readyz(p.client)}

	// The server token in force: the join API reads it on every request;
	// the Sync makes it (and the token file) follow the cluster's
	// published token, so kedge token rotate needs no restart.
	p.liveToken = servertoken.NewLive(p.serverToken.Secret)
	tokenSync := &servertoken.Sync{Client: p.client, File: cc.Paths.TokenFile, CAHash: p.serverToken.CAHash, Live: p.liveToken,
		Log: log.With("component", "server-token")}

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
	components = append(components,
		// The egress proxy serves before the apiserver starts: the
		// apiserver dials through it before it reports ready.
		tunnels.Egress(),
		api,
		tokenSync,
		p.supervisor(api, tunnels, metricsRoute, members),
		tunnels,
		&endpoints.Reconciler{Client: p.client, Server: cc.NodeName, IP: cc.AdvertiseIP, Port: int32(cc.HTTPSListenPort), Log: log},
		&rbac.Reconciler{Client: p.client, Log: log.With("component", "rbac")},
		p.certificateRenewal(),
		addons,
	)
	components = append(components, metrics...)
	components = append(components, p.controllers(in)...)
	if s := p.scheduledSnapshots(); s != nil {
		components = append(components, s)
	}
	if !cc.DisableAgent {
		node, err := embeddedAgent(cc, p.serverToken)
		if err != nil {
			return nil, err
		}
		components = append(components, &ownAgent{node: node, token: p.liveToken, log: log})
	}
	return components, nil
}

// certificateRenewal renews the server's certificates while it runs.
func (p *prepared) certificateRenewal() *certrenewal.Renewer {
	return &certrenewal.Renewer{Request: p.tlsRequest, AtStart: p.tls.Issued, Written: p.writeAdminKubeconfig,
		Client: p.client, Node: p.cc.NodeName, Log: p.log.With("component", "certificate-renewal")}
}

// supervisor serves the public port: the apiserver, the join API, the
// agents' tunnels and the metrics API's route.
func (p *prepared) supervisor(api *apiserver.APIServer, tunnels *tunnel.Server, metrics *supervisor.Named, members join.Members) *supervisor.Supervisor {
	cc := p.cc
	return &supervisor.Supervisor{
		Addr:     net.JoinHostPort(cc.BindAddress, strconv.Itoa(cc.HTTPSListenPort)),
		CertFile: p.tls.ServingCert, KeyFile: p.tls.ServingKey, CAFile: p.tls.ServerCA,
		API:    api.Handler,
		Tunnel: tunnels,
		Named:  metrics,
		Join: &join.Handler{
			CABundle: p.caBundle, ServerCA: p.serverCA, ClientCA: p.clientCA,
			ServerSecret: p.liveToken.Secret, AgentToken: p.agentToken,
			Bootstrap: &bootstrap.Authenticator{Client: p.client},
			Passwords: &nodepassword.Store{Client: p.client},
			Cluster: joinapi.Cluster{ClusterDNS: cc.ClusterDNS, ClusterDomain: cc.ClusterDomain,
				ClusterCIDR: cc.ClusterCIDR, ServiceCIDR: cc.ServiceCIDR},
			TLSDir:  cc.Paths.TLSDir,
			Members: members,
			Log:     p.log.With("component", "join"),
		},
		Log: p.log.With("component", "supervisor"),
	}
}

// controllers are the scheduler, the controller-manager and kedge's own
// cluster-wide controllers. SQLite is one server's own; any other
// datastore may be shared by servers, and then one of them, elected, runs
// the controllers.
func (p *prepared) controllers(in control.Inputs) []component.Component {
	cc, client, log := p.cc, p.client, p.log
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
	if cc.Datastore == config.DatastoreSQLite {
		return controllers
	}
	return []component.Component{&leader.Elected{
		Client: client, Namespace: metav1.NamespaceSystem, Lease: ControllersLease, Identity: cc.NodeName,
		Components: controllers, Log: log.With("component", "leader-election"),
	}}
}

// ownAgent is the server's own node. It joins (when it has no usable
// credentials) with the server token in force when it starts, which the
// token Sync may have changed since prepare (a rotation while this server
// was down).
type ownAgent struct {
	node  *agentconfig.Completed
	token *servertoken.Live
	log   *slog.Logger
}

var _ component.Component = (*ownAgent)(nil)

// Name implements component.Component.
func (o *ownAgent) Name() string { return "agent" }

// Run implements component.Component (see agent.Agent.Run).
func (o *ownAgent) Run(ctx context.Context, ready func()) error {
	node := *o.node
	node.Token.Secret = o.token.Secret()
	// The server's own kubelet is reached directly, without a tunnel.
	return (&agent.Agent{Config: &node, Log: o.log, NoTunnel: true}).Run(ctx, ready)
}

// scheduledSnapshots takes the scheduled snapshots of the datastore this
// server owns: its SQLite file or its embedded etcd member. Nil with
// --disable-snapshots and for datastores kedge does not own (external
// etcd, PostgreSQL, MySQL, a sqlite:// endpoint elsewhere): their backups
// are their operators'.
func (p *prepared) scheduledSnapshots() component.Component {
	cc, log := p.cc, p.log.With("component", "scheduled-snapshots")
	if cc.DisableSnapshots {
		return nil
	}
	owned := cc.Datastore == config.DatastoreEmbeddedEtcd || (cc.Datastore == config.DatastoreSQLite && cc.DatastoreEndpoint == "")
	if !owned {
		log.Info("scheduled snapshots are off: kedge takes them only of its own SQLite datastore or embedded etcd", "datastore", cc.Datastore)
		return nil
	}
	return &snapshot.Scheduler{
		Schedule:  cc.SnapshotSchedule,
		Retention: cc.SnapshotRetention,
		Request: snapshot.Request{DataDir: cc.DataDir, Dir: cc.SnapshotDir, Node: cc.NodeName,
			EtcdEndpoint: snapshot.EtcdEndpoint(cc.EtcdClientPort)},
		Log: log,
	}
}

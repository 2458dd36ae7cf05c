package agent

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"

	"github.com/kedge/kedge/agent/join"
	"github.com/kedge/kedge/agent/network/cni"
	"github.com/kedge/kedge/agent/node/evictpolicy"
	agentkubelet "github.com/kedge/kedge/agent/node/kubelet"
	"github.com/kedge/kedge/agent/node/localstorage"
	"github.com/kedge/kedge/agent/node/nodeaddresses"
	agentproxy "github.com/kedge/kedge/agent/node/proxy"
	"github.com/kedge/kedge/agent/runtime/bundle"
	"github.com/kedge/kedge/agent/runtime/images"
	"github.com/kedge/kedge/agent/uplink/apicache"
	"github.com/kedge/kedge/agent/uplink/lb"
	agenttunnel "github.com/kedge/kedge/agent/uplink/tunnel"
	"github.com/kedge/kedge/embedded/component"
	"github.com/kedge/kedge/embedded/containerd"
	"github.com/kedge/kedge/embedded/flannel"
	"github.com/kedge/kedge/embedded/kubelet"
	"github.com/kedge/kedge/embedded/proxy"
	"github.com/kedge/kedge/shared/localvolume"
)

// components is the node's start order: each component starts once the one
// before it is ready, and they stop in reverse. withTunnel adds the
// reverse tunnels to every server.
func (n *node) components(withTunnel bool) ([]component.Component, error) {
	cc, p, log := n.cc, n.cc.Paths, n.log
	cred := func(name string) string { return filepath.Join(p.CredDir, name) }
	// The node's own client goes through the local caching endpoint.
	nodeClient, err := clientFromKubeconfig(p.KubeletKubeconfig)
	if err != nil {
		return nil, err
	}
	// What the server may dial through the tunnel; the pod CIDR comes with
	// flannel's lease.
	tunnelAllow := &agenttunnel.Allow{NodeIP: cc.NodeIP}
	// One tunnel to each server the balancer knows (to --server alone without it).
	var tunnels *agenttunnel.Set
	if withTunnel {
		tunnels = &agenttunnel.Set{Server: cc.Server, CertFile: cred(join.KubeletClientCert), KeyFile: cred(join.KubeletClientKey),
			CAFile: cred(join.ServerCA), Allow: tunnelAllow, Log: log.With("component", "tunnel")}
	}
	var components []component.Component
	if cc.LBPort != 0 {
		balancer, err := n.balancer(tunnels)
		if err != nil {
			return nil, err
		}
		components = append(components, balancer)
	}
	components = append(components,
		&apicache.Proxy{
			Addr: cc.LocalAPIAddr(), Upstream: cc.APIServer, ServerCA: cred(join.ServerCA), ClientCA: cred(join.ClientCA),
			ServingCert: cred(join.KubeletServingCert), ServingKey: cred(join.KubeletServingKey),
			Identities: []apicache.Identity{
				{CertFile: cred(join.KubeletClientCert), KeyFile: cred(join.KubeletClientKey)},
				{CertFile: cred(join.KubeProxyCert), KeyFile: cred(join.KubeProxyKey)},
			},
			Dir: p.CacheDir, Log: log.With("component", "api-cache"),
		},
		// The kubelet runs with --cloud-provider=external: the server's
		// cloud node controller sets the Node's addresses from these
		// annotations, set as soon as the kubelet registered the Node, and
		// then removes the uninitialized taint.
		&nodeaddresses.Publisher{Client: nodeClient, Node: cc.NodeName, InternalIP: cc.NodeIP, ExternalIPs: cc.NodeExternalIPs,
			Extra: map[string]string{localvolume.StoragePathAnnotation: p.Storage}, Log: log.With("component", "node-addresses")},
		// Makes and removes the directories of the node's local-path volumes.
		&localstorage.Keeper{Client: nodeClient, Node: cc.NodeName, Dir: p.Storage, Log: log.With("component", "local-storage")},
		&containerd.Containerd{ConfigFile: p.ContainerdConfig, Socket: p.Socket},
		&images.Importer{Socket: p.Socket, Dir: p.ImagesDir, Embedded: bundle.PauseImage, Log: log.With("component", "images")},
		&kubelet.Kubelet{ConfigFile: p.KubeletConfig, Args: agentkubelet.Args(n.kubelet),
			HealthzURL: fmt.Sprintf("http://127.0.0.1:%d/healthz", agentkubelet.HealthzPort)},
		// After the kubelet registered the Node: flannel needs its pod CIDR.
		n.flannel(tunnelAllow),
		&nodeaddresses.Initialized{Client: nodeClient, Node: cc.NodeName, InternalIP: cc.NodeIP, ExternalIPs: cc.NodeExternalIPs,
			Log: log.With("component", "node-addresses")},
		// After the kubelet registered the Node with its IP and the Node's
		// addresses are set: kube-proxy exits the process if the Node's IPs
		// change after it starts.
		&proxy.Proxy{HealthzURL: "http://" + agentproxy.HealthzAddress + "/healthz", Args: agentproxy.Args(agentproxy.Inputs{
			NodeName: cc.NodeName, Kubeconfig: p.KubeProxyKubeconfig, ClusterCIDR: n.cluster.ClusterCIDR,
			ExtraArgs: cc.KubeProxyArgs,
		})},
	)
	dns, err := clusterDNS(cc, n.cluster.ClusterDomain, n.cluster.ClusterCIDR, log)
	if err != nil {
		return nil, err
	}
	components = append(components, dns)
	if cc.EvictWhenUnreachable != nil {
		components = append(components, &evictpolicy.Annotator{Client: nodeClient, Node: cc.NodeName,
			Evict: *cc.EvictWhenUnreachable, Log: log.With("component", "evict-policy")})
	}
	password, err := nodePassword(p.NodePassword)
	if err != nil {
		return nil, err
	}
	// Ready at once; renews the node's certificates in place when due.
	components = append(components, &join.Renewer{Server: cc.Server, Dir: p.CredDir, RequestFile: p.RenewRequest, Token: cc.Token, Client: nodeClient,
		Node: joinNode(cc, password), Log: log.With("component", "certificate-renewal")})
	if tunnels != nil {
		// Ready at once; it connects in the background.
		components = append(components, tunnels)
	}
	return components, nil
}

// balancer is the client-side load balancer in front of the servers; it
// opens a tunnel to every server it learns of when tunnels is set.
func (n *node) balancer(tunnels *agenttunnel.Set) (*lb.Balancer, error) {
	cc, p := n.cc, n.cc.Paths
	// kube-proxy's identity may list the EndpointSlices that name the servers.
	discovery, err := clientFromKubeconfig(p.KubeProxyKubeconfig)
	if err != nil {
		return nil, err
	}
	balancer := &lb.Balancer{
		Listen: net.JoinHostPort("127.0.0.1", strconv.Itoa(cc.LBPort)), Server: cc.Server,
		CAFile: filepath.Join(p.CredDir, join.ServerCA), StateFile: p.LBServers, Client: discovery,
		Log: n.log.With("component", "lb"),
	}
	if tunnels != nil {
		balancer.OnServers = tunnels.SetServers // a tunnel to every server
	}
	return balancer, nil
}

// flannel runs the vxlan overlay; with its lease it writes the CNI
// configuration and lets the tunnel reach the node's pods.
func (n *node) flannel(tunnelAllow *agenttunnel.Allow) *flannel.Flannel {
	cc, log := n.cc, n.log
	return &flannel.Flannel{
		Kubeconfig: cc.Paths.KubeletKubeconfig, NodeName: cc.NodeName, NodeIP: cc.NodeIP,
		ClusterCIDR: n.cluster.ClusterCIDR, NetConfFile: cc.Paths.FlannelNetConf,
		ReadyAtStart: cni.Exists(cc.Paths.CNIConfDir),
		OnLease: func(l flannel.Lease) error {
			tunnelAllow.SetPodCIDRs(l.Subnet)
			wrote, err := cni.Write(cc.Paths.CNIConfDir, cni.Network{Subnet: l.Subnet, MTU: l.MTU})
			if wrote {
				log.Info("wrote CNI config", "component", "cni", "subnet", l.Subnet, "mtu", l.MTU)
			}
			return err
		},
		Log: log.With("component", "flannel"),
	}
}

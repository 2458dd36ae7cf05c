// Package agent runs a kedge worker node: it joins a server with a
// CA-pinned token, then runs the client-side load balancer in front of the
// servers (unless LBPort is 0), the local caching API endpoint the node's
// components use, containerd (with runc and the CNI plugins from the
// embedded bundle), imports the pod sandbox image and any image tarballs
// dropped into <data-dir>/agent/images, and runs the kubelet, flannel
// (vxlan between nodes; it writes the CNI config from its lease),
// kube-proxy and the reverse tunnels (one to each server the balancer
// knows) through which the servers reach the kubelet and pods.
package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kedge/kedge/agent/apicache"
	"github.com/kedge/kedge/agent/bundle"
	"github.com/kedge/kedge/agent/checkconfig"
	"github.com/kedge/kedge/agent/clusterdns"
	"github.com/kedge/kedge/agent/cni"
	"github.com/kedge/kedge/agent/config"
	agentcontainerd "github.com/kedge/kedge/agent/containerd"
	"github.com/kedge/kedge/agent/evictpolicy"
	"github.com/kedge/kedge/agent/images"
	"github.com/kedge/kedge/agent/join"
	agentkubelet "github.com/kedge/kedge/agent/kubelet"
	"github.com/kedge/kedge/agent/lb"
	"github.com/kedge/kedge/agent/localstorage"
	"github.com/kedge/kedge/agent/nodeaddresses"
	agentproxy "github.com/kedge/kedge/agent/proxy"
	"github.com/kedge/kedge/agent/registries"
	agenttunnel "github.com/kedge/kedge/agent/tunnel"
	"github.com/kedge/kedge/embedded/backoff"
	"github.com/kedge/kedge/embedded/component"
	"github.com/kedge/kedge/embedded/containerd"
	"github.com/kedge/kedge/embedded/flannel"
	"github.com/kedge/kedge/embedded/kubelet"
	"github.com/kedge/kedge/embedded/memtune"
	"github.com/kedge/kedge/embedded/proxy"
	"github.com/kedge/kedge/shared/atomicfile"
	"github.com/kedge/kedge/shared/kubeconfig"
	"github.com/kedge/kedge/shared/localvolume"
)

// Kubeconfig file names in the credentials directory.
const (
	KubeletKubeconfig   = "kubelet.kubeconfig"
	KubeProxyKubeconfig = "kube-proxy.kubeconfig"
)

// Agent is a whole worker node as one component, so that `kedge agent` and
// the agent embedded in `kedge server` run the same way.
type Agent struct {
	Config *config.Completed
	Log    *slog.Logger
	// NoTunnel leaves out the reverse tunnel (the server's own node is
	// reached directly).
	NoTunnel bool
}

var _ component.Component = (*Agent)(nil)

// Name implements component.Component.
func (a *Agent) Name() string { return "agent" }

// Run implements component.Component: it joins (unless usable credentials
// are already on disk), runs the node's components and calls ready once all
// of them are ready, until ctx is cancelled.
func (a *Agent) Run(ctx context.Context, ready func()) error {
	return run(ctx, a.Config, a.Log, !a.NoTunnel, ready)
}

func run(ctx context.Context, cc *config.Completed, log *slog.Logger, withTunnel bool, ready func()) error {
	p := cc.Paths
	// Local configuration is checked before anything is sent to the server.
	regs, err := registries.Load(cc.RegistriesFile)
	if err != nil {
		return fmt.Errorf("registries: %w", err)
	}
	for _, dir := range []string{p.AgentDir, p.EtcDir, p.ImagesDir} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("--data-dir %s is not writable: %w", cc.DataDir, errors.Unwrap(err))
		}
	}
	if err := join.Usable(p.CredDir); err != nil {
		password, err := nodePassword(p.NodePassword)
		if err != nil {
			return err
		}
		if err := joinWithRetry(ctx, cc, password, log); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil // stopped while waiting to join
		}
	} else {
		log.Info("using stored node credentials", "dir", p.CredDir)
	}
	if err := writeKubeconfigs(cc); err != nil {
		return err
	}

	bin, err := bundle.Install(cc.DataDir)
	if err != nil {
		return err
	}
	// containerd finds the shims of containers that outlived an agent
	// restart by name on PATH (the configured runtime path serves new ones).
	if err := putOnPath(bin); err != nil {
		return err
	}
	if err := regs.Write(filepath.Join(p.EtcDir, "registries.d")); err != nil {
		return fmt.Errorf("registries: %w", err)
	}
	cniConfDir := filepath.Join(p.EtcDir, "cni", "net.d")
	restrict := !agentcontainerd.CanLowerOOMScoreAdj()
	if restrict {
		log.Info("this process may not lower oom_score_adj; containers keep the agent's", "restrict_oom_score_adj", true)
	}
	toml, err := agentcontainerd.Render(agentcontainerd.Config{
		Root: p.Containerd, State: filepath.Join(p.RunDir, "containerd"), Socket: p.Socket, BinDir: bin,
		CNIConfDir: cniConfDir, RegistryConfigDir: filepath.Join(p.EtcDir, "registries.d"),
		RestrictOOMScoreAdj: restrict,
	})
	if err != nil {
		return err
	}
	configFile := filepath.Join(p.EtcDir, "containerd.toml")
	if err := atomicfile.Write(configFile, []byte(toml), 0o600); err != nil {
		return err
	}
	cluster, err := join.LoadCluster(p.CredDir)
	if err != nil {
		return fmt.Errorf("cluster facts from the server: %w", err)
	}
	cgroupV1 := isCgroupV1()
	if cgroupV1 {
		log.Warn("this host uses cgroup v1; the kubelet runs with failCgroupV1=false")
	}
	kin := agentkubelet.Inputs{
		NodeName: cc.NodeName, NodeIP: cc.NodeIP.String(),
		Kubeconfig:   filepath.Join(p.CredDir, KubeletKubeconfig),
		ClientCAFile: filepath.Join(p.CredDir, join.ClientCA),
		ServingCert:  filepath.Join(p.CredDir, join.KubeletServingCert), ServingKey: filepath.Join(p.CredDir, join.KubeletServingKey),
		ContainerdSocket: p.Socket, ClusterDNS: cluster.ClusterDNS, ClusterDomain: cluster.ClusterDomain,
		RootDir: "/var/lib/kubelet", ResolvConf: cc.PodResolvConf, CgroupV1: cgroupV1,
		Labels: cc.NodeLabels, ExtraArgs: cc.KubeletArgs,
	}
	for _, tn := range cc.NodeTaints {
		parsed, _ := config.ParseTaint(tn) // validated in Config.Validate
		kin.Taints = append(kin.Taints, agentkubelet.Taint{Key: parsed.Key, Value: parsed.Value, Effect: parsed.Effect})
	}
	kubeletConfig, err := agentkubelet.Config(kin)
	if err != nil {
		return err
	}
	kubeletConfigFile := filepath.Join(p.EtcDir, "kubelet-config.yaml")
	if err := atomicfile.Write(kubeletConfigFile, kubeletConfig, 0o600); err != nil {
		return err
	}
	flannelConf, err := flannel.NetConf(cluster.ClusterCIDR)
	if err != nil {
		return err
	}
	flannelConfFile := filepath.Join(p.EtcDir, "flannel", "net-conf.json")
	if err := os.MkdirAll(filepath.Dir(flannelConfFile), 0o700); err != nil {
		return err
	}
	if err := atomicfile.Write(flannelConfFile, flannelConf, 0o600); err != nil {
		return fmt.Errorf("write flannel net-conf: %w", err)
	}
	// What the server may dial through the tunnel; the pod CIDR comes with
	// flannel's lease.
	tunnelAllow := &agenttunnel.Allow{NodeIP: cc.NodeIP}
	release := func() {
		if n, err := memtune.ReleaseExecutablePages(); err != nil {
			log.Debug("could not release start-up pages", "error", err)
		} else {
			log.Debug("released start-up pages", "bytes", n)
		}
	}
	runner := &component.Runner{Log: log, OnReady: func() {
		release()
		// The kubelet, kube-proxy and flannel go on starting up (first
		// syncs, pod start) after they report ready; release once more.
		time.AfterFunc(30*time.Second, release)
		log.Info("kedge agent is ready", "node", cc.NodeName, "server", cc.Server)
		ready()
	}}
	// One tunnel to each server the balancer knows (to --server alone without it).
	var tunnels *agenttunnel.Set
	if withTunnel {
		tunnels = &agenttunnel.Set{Server: cc.Server,
			CertFile: filepath.Join(p.CredDir, join.KubeletClientCert), KeyFile: filepath.Join(p.CredDir, join.KubeletClientKey),
			CAFile: filepath.Join(p.CredDir, join.ServerCA), Allow: tunnelAllow, Log: log.With("component", "tunnel")}
	}
	var components []component.Component
	if cc.LBPort != 0 {
		// kube-proxy's identity may list the EndpointSlices that name the servers.
		discovery, err := clientFromKubeconfig(filepath.Join(p.CredDir, KubeProxyKubeconfig))
		if err != nil {
			return err
		}
		balancer := &lb.Balancer{
			Listen: net.JoinHostPort("127.0.0.1", strconv.Itoa(cc.LBPort)), Server: cc.Server,
			CAFile: filepath.Join(p.CredDir, join.ServerCA), StateFile: p.LBServers, Client: discovery,
			Log: log.With("component", "lb"),
		}
		if tunnels != nil {
			balancer.OnServers = tunnels.SetServers // a tunnel to every server
		}
		components = append(components, balancer)
	}
	cred := func(name string) string { return filepath.Join(p.CredDir, name) }
	// The node's own client goes through the local caching endpoint.
	nodeClient, err := clientFromKubeconfig(filepath.Join(p.CredDir, KubeletKubeconfig))
	if err != nil {
		return err
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
		&containerd.Containerd{ConfigFile: configFile, Socket: p.Socket},
		&images.Importer{Socket: p.Socket, Dir: p.ImagesDir, Embedded: bundle.PauseImage, Log: log.With("component", "images")},
		&kubelet.Kubelet{ConfigFile: kubeletConfigFile, Args: agentkubelet.Args(kin),
			HealthzURL: fmt.Sprintf("http://127.0.0.1:%d/healthz", agentkubelet.HealthzPort)},
		// After the kubelet registered the Node: flannel needs its pod CIDR.
		&flannel.Flannel{
			Kubeconfig: filepath.Join(p.CredDir, KubeletKubeconfig), NodeName: cc.NodeName, NodeIP: cc.NodeIP,
			ClusterCIDR: cluster.ClusterCIDR, NetConfFile: flannelConfFile,
			ReadyAtStart: cni.Exists(cniConfDir),
			OnLease: func(l flannel.Lease) error {
				tunnelAllow.SetPodCIDRs(l.Subnet)
				wrote, err := cni.Write(cniConfDir, cni.Network{Subnet: l.Subnet, MTU: l.MTU})
				if wrote {
					log.Info("wrote CNI config", "component", "cni", "subnet", l.Subnet, "mtu", l.MTU)
				}
				return err
			},
			Log: log.With("component", "flannel"),
		},
		&nodeaddresses.Initialized{Client: nodeClient, Node: cc.NodeName, InternalIP: cc.NodeIP, ExternalIPs: cc.NodeExternalIPs,
			Log: log.With("component", "node-addresses")},
		// After the kubelet registered the Node with its IP and the Node's
		// addresses are set: kube-proxy exits the process if the Node's IPs
		// change after it starts.
		&proxy.Proxy{HealthzURL: "http://" + agentproxy.HealthzAddress + "/healthz", Args: agentproxy.Args(agentproxy.Inputs{
			NodeName: cc.NodeName, Kubeconfig: filepath.Join(p.CredDir, KubeProxyKubeconfig), ClusterCIDR: cluster.ClusterCIDR,
			ExtraArgs: cc.KubeProxyArgs,
		})},
	)
	dns, err := clusterDNS(cc, cluster.ClusterDomain, cluster.ClusterCIDR, log)
	if err != nil {
		return err
	}
	components = append(components, dns)
	if cc.EvictWhenUnreachable != nil {
		components = append(components, &evictpolicy.Annotator{Client: nodeClient, Node: cc.NodeName,
			Evict: *cc.EvictWhenUnreachable, Log: log.With("component", "evict-policy")})
	}
	if tunnels != nil {
		// Ready at once; it connects in the background.
		components = append(components, tunnels)
	}
	err = runner.Run(ctx, components...)
	if err == nil {
		log.Info("kedge agent stopped")
	} else if checkconfig.LooksLikeMissingKernelFeature(err) {
		// The error itself is returned; this line only points at the tool.
		log.Error(checkconfig.Hint)
	}
	return err
}

// clusterDNS is the node's DNS (CoreDNS in this process) at the node IP,
// port clusterdns.Port. It reads the cluster through the local caching
// endpoint as kube-proxy (whose identity kedge's cluster-dns role lets
// read Namespaces too), so it answers for the cluster's Services while the
// node is cut off, also after an agent restart.
//
// It answers only the pods (clusterCIDR) and the host itself (its
// addresses at start and loopback), not the node's LAN.
func clusterDNS(cc *config.Completed, domain, clusterCIDR string, log *slog.Logger) (*clusterdns.Server, error) {
	kubeconfig := filepath.Join(cc.Paths.CredDir, KubeProxyKubeconfig)
	client, err := clientFromKubeconfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	upstreams := clusterdns.Upstreams(cc.Resolvers)
	log = log.With("component", "cluster-dns")
	if len(upstreams) == 0 {
		log.Warn("no nameserver in the resolv.conf; names outside the cluster will not resolve", "resolv_conf", cc.ResolvConfPath)
	}
	return &clusterdns.Server{Client: client, Log: log, Corefile: clusterdns.Corefile(clusterdns.Inputs{
		NodeIP: cc.NodeIP, Port: clusterdns.Port, ClusterDomain: domain, Kubeconfig: kubeconfig, Upstreams: upstreams,
		AllowFrom: dnsClients(clusterCIDR, cc.NodeIP),
	})}, nil
}

// dnsClients are the source networks the node's DNS answers: the pod
// network, loopback and every address of the host (a host process or
// hostNetwork pod asking the cluster DNS address uses one of them).
func dnsClients(clusterCIDR string, nodeIP net.IP) []string {
	out := []string{clusterCIDR, "127.0.0.0/8", "::1/128"}
	ips := []net.IP{nodeIP}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				ips = append(ips, n.IP)
			}
		}
	}
	for _, ip := range ips {
		bits := 128
		if ip.To4() != nil {
			bits = 32
		}
		if c := (&net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)}).String(); !slices.Contains(out, c) && !ip.IsLoopback() {
			out = append(out, c)
		}
	}
	return out
}

// nodePassword returns the node's join password, creating it (0600) once.
func nodePassword(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		if pw := strings.TrimSpace(string(b)); pw != "" {
			return pw, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	buf := make([]byte, 16)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	pw := hex.EncodeToString(buf)
	if err := atomicfile.Write(path, []byte(pw+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("store node password: %w", err)
	}
	return pw, nil
}

// joinWithRetry pins the server CA and requests credentials, retrying with
// jittered exponential backoff (1 s to 30 s) until it succeeds or ctx ends.
func joinWithRetry(ctx context.Context, cc *config.Completed, password string, log *slog.Logger) error {
	retry := backoff.Backoff{Min: time.Second, Max: 30 * time.Second, Jitter: 0.5}
	for {
		err := joinOnce(ctx, cc, password)
		if err == nil {
			log.Info("joined", "server", cc.Server, "node", cc.NodeName)
			return nil
		}
		wait := retry.Next()
		log.Error("cannot join the server; retrying", "server", cc.Server, "error", err, "retry_in", wait.Round(100*time.Millisecond))
		if !backoff.Sleep(ctx, wait) {
			return nil
		}
	}
}

func joinOnce(ctx context.Context, cc *config.Completed, password string) error {
	ca, err := join.FetchCA(ctx, cc.Server, cc.Token)
	if err != nil {
		return err
	}
	certs, err := join.RequestCerts(ctx, cc.Server, ca, cc.Token, join.Node{
		Name: cc.NodeName, Password: password, Addresses: []string{cc.NodeIP.String(), cc.NodeName},
	})
	if err != nil {
		return err
	}
	return certs.Save(cc.Paths.CredDir)
}

func writeKubeconfigs(cc *config.Completed) error {
	dir := cc.Paths.CredDir
	for name, pair := range map[string][2]string{
		KubeletKubeconfig:   {join.KubeletClientCert, join.KubeletClientKey},
		KubeProxyKubeconfig: {join.KubeProxyCert, join.KubeProxyKey},
	} {
		// The node's components talk to the local caching endpoint, whose
		// certificate is the kubelet's serving certificate (for the node name).
		spec := kubeconfig.Spec{Server: cc.LocalAPI(), TLSServerName: cc.NodeName, CAFile: filepath.Join(dir, join.ServerCA),
			CertFile: filepath.Join(dir, pair[0]), KeyFile: filepath.Join(dir, pair[1])}
		if err := kubeconfig.Write(filepath.Join(dir, name), spec, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// isCgroupV1 reports whether the host has no unified cgroup v2 hierarchy
// at /sys/fs/cgroup.
func isCgroupV1() bool {
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	return err != nil
}

func clientFromKubeconfig(path string) (kubernetes.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return kubernetes.NewForConfig(cfg)
}

// putOnPath puts dir first on this process's PATH, once.
func putOnPath(dir string) error {
	path := os.Getenv("PATH")
	for _, d := range filepath.SplitList(path) {
		if d == dir {
			return nil
		}
	}
	return os.Setenv("PATH", dir+string(os.PathListSeparator)+path)
}

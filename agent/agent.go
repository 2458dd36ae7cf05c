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
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kedge/kedge/agent/checkconfig"
	"github.com/kedge/kedge/agent/config"
	"github.com/kedge/kedge/agent/join"
	"github.com/kedge/kedge/agent/network/clusterdns"
	"github.com/kedge/kedge/embedded/backoff"
	"github.com/kedge/kedge/embedded/component"
	"github.com/kedge/kedge/embedded/memtune"
	"github.com/kedge/kedge/shared/atomicfile"
	"github.com/kedge/kedge/shared/certlife"
	"github.com/kedge/kedge/shared/kubeconfig"
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
// are already on disk), writes the node's configuration files, runs the
// node's components in start order (components) and calls ready once all
// of them are ready, until ctx is cancelled.
func (a *Agent) Run(ctx context.Context, ready func()) error {
	cc, log := a.Config, a.Log
	if err := certlife.Setup(log); err != nil {
		return err
	}
	n, err := prepare(ctx, cc, log)
	if err != nil || n == nil {
		return err // n is nil when ctx ended while joining
	}
	components, err := n.components(!a.NoTunnel)
	if err != nil {
		return err
	}
	runner := &component.Runner{Log: log, OnReady: func() {
		memtune.ReleaseStartupPages(log)
		// The kubelet, kube-proxy and flannel go on starting up (first
		// syncs, pod start) after they report ready; release once more.
		time.AfterFunc(30*time.Second, func() { memtune.ReleaseStartupPages(log) })
		log.Info("kedge agent is ready", "node", cc.NodeName, "server", cc.Server)
		ready()
	}}
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
	kubeconfig := cc.Paths.KubeProxyKubeconfig
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
	certs, err := join.RequestCerts(ctx, cc.Server, ca, cc.Token, joinNode(cc, password))
	if err != nil {
		return err
	}
	return certs.Save(cc.Paths.CredDir)
}

// joinNode is who this node joins and renews its certificates as.
func joinNode(cc *config.Completed, password string) join.Node {
	return join.Node{Name: cc.NodeName, Password: password, Addresses: []string{cc.NodeIP.String(), cc.NodeName}}
}

func writeKubeconfigs(cc *config.Completed) error {
	dir := cc.Paths.CredDir
	for file, pair := range map[string][2]string{
		cc.Paths.KubeletKubeconfig:   {join.KubeletClientCert, join.KubeletClientKey},
		cc.Paths.KubeProxyKubeconfig: {join.KubeProxyCert, join.KubeProxyKey},
	} {
		// The node's components talk to the local caching endpoint, whose
		// certificate is the kubelet's serving certificate (for the node name).
		spec := kubeconfig.Spec{Server: cc.LocalAPI(), TLSServerName: cc.NodeName, CAFile: filepath.Join(dir, join.ServerCA),
			CertFile: filepath.Join(dir, pair[0]), KeyFile: filepath.Join(dir, pair[1])}
		if err := kubeconfig.Write(file, spec, 0o600); err != nil {
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

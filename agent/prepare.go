package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/kedge/kedge/agent/config"
	"github.com/kedge/kedge/agent/join"
	agentkubelet "github.com/kedge/kedge/agent/node/kubelet"
	"github.com/kedge/kedge/agent/runtime/bundle"
	agentcontainerd "github.com/kedge/kedge/agent/runtime/containerd"
	"github.com/kedge/kedge/agent/runtime/registries"
	"github.com/kedge/kedge/embedded/flannel"
	"github.com/kedge/kedge/shared/atomicfile"
	"github.com/kedge/kedge/shared/joinapi"
)

// node is what Agent.Run prepares before any component starts: the node's
// credentials, the runtime bundle on disk, and the configuration files of
// containerd, the kubelet and flannel.
type node struct {
	cc  *config.Completed
	log *slog.Logger
	// bin holds the bundle's programs (runc, shims, CNI plugins).
	bin     string
	cluster joinapi.Cluster
	// kubelet holds the kubelet's flag inputs.
	kubelet agentkubelet.Inputs
}

// prepare checks the local configuration, joins the server unless the
// stored credentials are usable, and writes every file the components
// read. It returns nil, nil when ctx ended while joining.
func prepare(ctx context.Context, cc *config.Completed, log *slog.Logger) (*node, error) {
	p := cc.Paths
	// Local configuration is checked before anything is sent to the server.
	regs, err := registries.Load(cc.RegistriesFile)
	if err != nil {
		return nil, fmt.Errorf("registries: %w", err)
	}
	for _, dir := range []string{p.AgentDir, p.EtcDir, p.ImagesDir} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("--data-dir %s is not writable: %w", cc.DataDir, errors.Unwrap(err))
		}
	}
	if err := join.Usable(p.CredDir); err != nil {
		password, err := nodePassword(p.NodePassword)
		if err != nil {
			return nil, err
		}
		if err := joinWithRetry(ctx, cc, password, log); err != nil {
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, nil // stopped while waiting to join
		}
	} else {
		log.Info("using stored node credentials", "dir", p.CredDir)
	}
	if err := writeKubeconfigs(cc); err != nil {
		return nil, err
	}
	n := &node{cc: cc, log: log}
	if n.bin, err = bundle.Install(cc.DataDir); err != nil {
		return nil, err
	}
	// containerd finds the shims of containers that outlived an agent
	// restart by name on PATH (the configured runtime path serves new ones).
	if err := putOnPath(n.bin); err != nil {
		return nil, err
	}
	if err := regs.Write(p.RegistriesDir); err != nil {
		return nil, fmt.Errorf("registries: %w", err)
	}
	if n.cluster, err = join.LoadCluster(p.CredDir); err != nil {
		return nil, fmt.Errorf("cluster facts from the server: %w", err)
	}
	for _, write := range []func() error{n.writeContainerdConfig, n.writeKubeletConfig, n.writeFlannelConf} {
		if err := write(); err != nil {
			return nil, err
		}
	}
	return n, nil
}

func (n *node) writeContainerdConfig() error {
	p := n.cc.Paths
	restrict := !agentcontainerd.CanLowerOOMScoreAdj()
	if restrict {
		n.log.Info("this process may not lower oom_score_adj; containers keep the agent's", "restrict_oom_score_adj", true)
	}
	toml, err := agentcontainerd.Render(agentcontainerd.Config{
		Root: p.Containerd, State: p.ContainerdState, Socket: p.Socket, BinDir: n.bin,
		CNIConfDir: p.CNIConfDir, RegistryConfigDir: p.RegistriesDir,
		RestrictOOMScoreAdj: restrict,
	})
	if err != nil {
		return err
	}
	return atomicfile.Write(p.ContainerdConfig, []byte(toml), 0o600)
}

func (n *node) writeKubeletConfig() error {
	cc, p := n.cc, n.cc.Paths
	cgroupV1 := isCgroupV1()
	if cgroupV1 {
		n.log.Warn("this host uses cgroup v1; the kubelet runs with failCgroupV1=false")
	}
	n.kubelet = agentkubelet.Inputs{
		NodeName: cc.NodeName, NodeIP: cc.NodeIP.String(),
		Kubeconfig:   p.KubeletKubeconfig,
		ClientCAFile: filepath.Join(p.CredDir, join.ClientCA),
		ServingCert:  filepath.Join(p.CredDir, join.KubeletServingCert), ServingKey: filepath.Join(p.CredDir, join.KubeletServingKey),
		ContainerdSocket: p.Socket, ClusterDNS: n.cluster.ClusterDNS, ClusterDomain: n.cluster.ClusterDomain,
		RootDir: "/var/lib/kubelet", ResolvConf: cc.PodResolvConf, CgroupV1: cgroupV1,
		Labels: cc.NodeLabels, ExtraArgs: cc.KubeletArgs,
	}
	for _, tn := range cc.NodeTaints {
		parsed, _ := config.ParseTaint(tn) // validated in Config.Validate
		n.kubelet.Taints = append(n.kubelet.Taints, agentkubelet.Taint{Key: parsed.Key, Value: parsed.Value, Effect: parsed.Effect})
	}
	kubeletConfig, err := agentkubelet.Config(n.kubelet)
	if err != nil {
		return err
	}
	return atomicfile.Write(p.KubeletConfig, kubeletConfig, 0o600)
}

func (n *node) writeFlannelConf() error {
	conf, err := flannel.NetConf(n.cluster.ClusterCIDR)
	if err != nil {
		return err
	}
	file := n.cc.Paths.FlannelNetConf
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	if err := atomicfile.Write(file, conf, 0o600); err != nil {
		return fmt.Errorf("write flannel net-conf: %w", err)
	}
	return nil
}

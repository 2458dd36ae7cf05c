package server

import (
	"fmt"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kedge/kedge/agent/network/clusterdns"
	agenttunnel "github.com/kedge/kedge/agent/uplink/tunnel"
	"github.com/kedge/kedge/embedded/flannel"
	"github.com/kedge/kedge/manifests"
	"github.com/kedge/kedge/server/config"
	"github.com/kedge/kedge/server/controllers/deploy"
	"github.com/kedge/kedge/server/controllers/servicelb"
)

// manifestDeployer stages the packaged manifests into cc.Paths.ManifestsDir
// and returns the component that applies that directory. serverCA is the
// server CA certificate (PEM).
func manifestDeployer(cc *config.Completed, restCfg *rest.Config, client kubernetes.Interface, serverCA []byte, log *slog.Logger) (*deploy.Deployer, error) {
	packaged, err := manifests.Files()
	if err != nil {
		return nil, fmt.Errorf("packaged manifests: %w", err)
	}
	if err := deploy.Stage(cc.Paths.ManifestsDir, packaged, cc.AddonDisabled); err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(restCfg)
	if err != nil {
		return nil, err
	}
	return &deploy.Deployer{
		Dir:     cc.Paths.ManifestsDir,
		Server:  cc.NodeName,
		Vars:    deploy.Variables{ClusterDNS: cc.ClusterDNS, ClusterDomain: cc.ClusterDomain, ServerCA: serverCA},
		Ignore:  func(file string) bool { return cc.AddonDisabled(deploy.AddonName(file)) },
		Client:  client,
		Dynamic: dyn,
		Log:     log.With("component", "deploy"),
	}, nil
}

// reservedPorts are the ports kedge serves on the nodes' addresses, which
// no LoadBalancer Service may take (see servicelb.Desired).
func reservedPorts(cc *config.Completed) map[string]string {
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	return map[string]string{
		servicelb.PortKey(tcp, int32(cc.HTTPSListenPort)):      "the Kubernetes API",
		servicelb.PortKey(tcp, agenttunnel.DefaultKubeletPort): "the kubelet",
		servicelb.PortKey(udp, flannel.VXLANPort):              "flannel vxlan",
		servicelb.PortKey(tcp, clusterdns.Port):                "cluster DNS",
		servicelb.PortKey(udp, clusterdns.Port):                "cluster DNS",
		servicelb.PortKey(tcp, int32(cc.EtcdPeerPort)):         "etcd peers",
	}
}

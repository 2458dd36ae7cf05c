// Package kubelet renders the kubelet's configuration file and flags.
// Rendering is pure and covered by golden files.
package kubelet

import (
	"fmt"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/kedge/kedge/embedded/kubeflags"
)

// HealthzPort is the kubelet's healthz port, bound to 127.0.0.1.
const HealthzPort = 10248

// Inputs are what the kubelet configuration depends on.
type Inputs struct {
	NodeName, NodeIP string
	Kubeconfig       string
	ClientCAFile     string
	ServingCert      string
	ServingKey       string
	ContainerdSocket string
	ClusterDNS       string
	ClusterDomain    string
	RootDir          string // kubelet's --root-dir
	ResolvConf       string
	Labels           []string // key=value
	Taints           []Taint
	ExtraArgs        []string // --kubelet-arg key=value, override flags
	CgroupV1         bool
}

// Taint is registered on the Node when the kubelet creates it.
type Taint struct{ Key, Value, Effect string }

// Config returns the KubeletConfiguration (v1beta1) YAML.
func Config(in Inputs) ([]byte, error) {
	taints := []map[string]string{}
	for _, t := range in.Taints {
		m := map[string]string{"key": t.Key, "effect": t.Effect}
		if t.Value != "" {
			m["value"] = t.Value
		}
		taints = append(taints, m)
	}
	cfg := map[string]any{
		"apiVersion": "kubelet.config.k8s.io/v1beta1",
		"kind":       "KubeletConfiguration",
		"authentication": map[string]any{
			"anonymous": map[string]any{"enabled": false},
			"webhook":   map[string]any{"enabled": true, "cacheTTL": "2m"},
			"x509":      map[string]any{"clientCAFile": in.ClientCAFile},
		},
		"authorization":            map[string]any{"mode": "Webhook"},
		"cgroupDriver":             "cgroupfs",
		"clusterDNS":               []string{in.ClusterDNS},
		"clusterDomain":            in.ClusterDomain,
		"containerRuntimeEndpoint": "unix://" + in.ContainerdSocket,
		"tlsCertFile":              in.ServingCert,
		"tlsPrivateKeyFile":        in.ServingKey,
		"rotateCertificates":       false,
		"serverTLSBootstrap":       false,
		"readOnlyPort":             0,
		"healthzBindAddress":       "127.0.0.1",
		"healthzPort":              HealthzPort,
		"resolvConf":               in.ResolvConf,
		"failSwapOn":               false,
		// An image on the node serves every pod that does not ask to pull
		// it. Upstream's default (NeverVerifyPreloadedImages) treats an
		// image as "pulled by the kubelet" while any pull of the same name
		// is in flight, so one pod's failing Always pull (offline: each
		// attempt hangs) makes IfNotPresent pods of a preloaded image pull
		// and fail too. The price: a pod may run an image another pod
		// pulled with its own credentials, as before Kubernetes 1.35.
		"imagePullCredentialsVerificationPolicy": "NeverVerify",
		// Small devices: keep evicting before the node is starved, but do
		// not reserve the 10-15% disk that upstream defaults ask for.
		"evictionHard": map[string]string{
			"memory.available":  "50Mi",
			"nodefs.available":  "5%",
			"nodefs.inodesFree": "5%",
			"imagefs.available": "5%",
		},
		"registerWithTaints": taints,
		"failCgroupV1":       !in.CgroupV1,
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("render kubelet config: %w", err)
	}
	return out, nil
}

// Args returns the kubelet's flags: the ones that exist only as flags, then
// the user's --kubelet-arg overrides, sorted. The kubelet runs with
// --cloud-provider=external: it registers the Node with its --node-ip as
// InternalIP and the taint node.cloudprovider.kubernetes.io/uninitialized,
// and the server's cloud node controller (kedge cloud provider) adds the
// ExternalIP addresses and removes the taint.
func Args(in Inputs) []string {
	args := map[string]string{
		"cloud-provider":    "external",
		"hostname-override": in.NodeName,
		"node-ip":           in.NodeIP,
		"kubeconfig":        in.Kubeconfig,
		"root-dir":          in.RootDir,
	}
	if len(in.Labels) > 0 {
		labels := append([]string(nil), in.Labels...)
		sort.Strings(labels)
		args["node-labels"] = strings.Join(labels, ",")
	}
	return kubeflags.Render(args, in.ExtraArgs)
}

// Package proxy renders kube-proxy's flags.
package proxy

import "github.com/kedge/kedge/embedded/kubeflags"

// HealthzAddress is kube-proxy's healthz listener.
const HealthzAddress = "127.0.0.1:10256"

// Inputs are what kube-proxy's flags depend on.
type Inputs struct {
	NodeName    string
	Kubeconfig  string
	ClusterCIDR string
	// Mode is nftables (default) or iptables.
	Mode      string
	ExtraArgs []string // --kube-proxy-arg key=value overrides
}

// Args returns kube-proxy's flags, sorted. Conntrack sysctls are left
// alone (they are global or read-only on many edge hosts and in containers).
func Args(in Inputs) []string {
	mode := in.Mode
	if mode == "" {
		mode = "nftables"
	}
	args := map[string]string{
		"proxy-mode":                        mode,
		"kubeconfig":                        in.Kubeconfig,
		"hostname-override":                 in.NodeName,
		"cluster-cidr":                      in.ClusterCIDR,
		"detect-local-mode":                 "ClusterCIDR",
		"conntrack-max-per-core":            "0",
		"conntrack-tcp-timeout-established": "0",
		"conntrack-tcp-timeout-close-wait":  "0",
		"healthz-bind-address":              HealthzAddress,
		"metrics-bind-address":              "127.0.0.1:10249",
	}
	return kubeflags.Render(args, in.ExtraArgs)
}

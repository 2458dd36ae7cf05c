package config

import (
	"errors"
	"fmt"
	"net"

	"k8s.io/apimachinery/pkg/util/validation"
)

// NodeOptions are the settings of a node that `kedge agent` takes for its
// node and `kedge server` for its own one, with the same flags
// (agent/command.NodeFlags).
type NodeOptions struct {
	NodeName string
	NodeIP   string
	// NodeExternalIPs are the node's ExternalIP addresses (each value one
	// IP or a comma-separated list).
	NodeExternalIPs []string
	NodeLabels      []string
	NodeTaints      []string
	KubeletArgs     []string
	KubeProxyArgs   []string
	// ResolvConf names the resolvers the node's cluster DNS forwards other
	// names to ("": DefaultResolvConf, which may be missing).
	ResolvConf string
	// LocalStoragePath is the directory of the node's local-path volumes
	// (empty: <data-dir>/storage).
	LocalStoragePath string
}

// Validate checks the values without touching the system; each problem
// names its flag.
func (o NodeOptions) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if o.NodeName != "" && len(validation.IsDNS1123Subdomain(o.NodeName)) > 0 {
		bad("--node-name %q is not a lowercase DNS name", o.NodeName)
	}
	if o.NodeIP != "" && net.ParseIP(o.NodeIP) == nil {
		bad("--node-ip %q is not an IP address", o.NodeIP)
	}
	if _, err := ParseNodeExternalIPs(o.NodeExternalIPs); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, validateNodeArgs(o.NodeLabels, o.NodeTaints, o.KubeletArgs, o.KubeProxyArgs))
	if err := validateLocalStoragePath(o.LocalStoragePath); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

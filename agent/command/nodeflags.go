package command

import (
	"github.com/urfave/cli/v2"

	"github.com/kedge/kedge/agent/config"
	"github.com/kedge/kedge/shared/cliflags"
)

// NodeFlags are the flags of config.NodeOptions, which `kedge agent` takes
// for its node and `kedge server` for its own one; whose names the node
// in the usage texts ("This node's", "This server's node's").
func NodeFlags(whose string) []cli.Flag {
	env := cliflags.Env
	return []cli.Flag{
		&cli.StringFlag{Name: "node-name", EnvVars: env("NODE_NAME"), Usage: whose + " name (default: hostname)"},
		&cli.StringFlag{Name: "node-ip", EnvVars: env("NODE_IP"), Usage: whose + " IP (default: address of the default-route interface)"},
		&cli.StringSliceFlag{Name: "node-external-ip", EnvVars: env("NODE_EXTERNAL_IP"), Usage: whose + " external IP, listed as ExternalIP in the Node's addresses (repeatable, or comma-separated)"},
		&cli.StringSliceFlag{Name: "node-label", EnvVars: env("NODE_LABEL"), Usage: "key=value label registered with " + lower(whose) + " Node (repeatable)"},
		&cli.StringSliceFlag{Name: "node-taint", EnvVars: env("NODE_TAINT"), Usage: "key=value:Effect taint registered with " + lower(whose) + " Node (repeatable)"},
		&cli.StringSliceFlag{Name: "kubelet-arg", EnvVars: env("KUBELET_ARG"), Usage: "key=value flag passed to " + lower(whose) + " kubelet (repeatable)"},
		&cli.StringSliceFlag{Name: "kube-proxy-arg", EnvVars: env("KUBE_PROXY_ARG"), Usage: "key=value flag passed to " + lower(whose) + " kube-proxy (repeatable; proxy-mode=iptables selects iptables)"},
		&cli.StringFlag{Name: "resolv-conf", EnvVars: env("RESOLV_CONF"), Usage: "resolv.conf naming the resolvers " + lower(whose) + " cluster DNS forwards names outside the cluster to (default " + config.DefaultResolvConf + "; a loopback resolver such as systemd-resolved's 127.0.0.53 works)"},
		&cli.StringFlag{Name: "local-storage-path", EnvVars: env("LOCAL_STORAGE_PATH"), Usage: "Directory of " + lower(whose) + " local-path volumes (default: <data-dir>/storage)"},
	}
}

// NodeOptions reads the flags of NodeFlags.
func NodeOptions(c *cli.Context) config.NodeOptions {
	return config.NodeOptions{
		NodeName:         c.String("node-name"),
		NodeIP:           c.String("node-ip"),
		NodeExternalIPs:  c.StringSlice("node-external-ip"),
		NodeLabels:       c.StringSlice("node-label"),
		NodeTaints:       c.StringSlice("node-taint"),
		KubeletArgs:      c.StringSlice("kubelet-arg"),
		KubeProxyArgs:    c.StringSlice("kube-proxy-arg"),
		ResolvConf:       c.String("resolv-conf"),
		LocalStoragePath: c.String("local-storage-path"),
	}
}

// lower is whose in the middle of a sentence.
func lower(whose string) string {
	if whose == "" {
		return whose
	}
	return string(whose[0]|0x20) + whose[1:]
}

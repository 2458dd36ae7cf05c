// Package command builds the `kedge agent` CLI command.
package command

import (
	"log/slog"

	"github.com/urfave/cli/v2"

	"github.com/kedge/kedge/agent"
	"github.com/kedge/kedge/agent/config"
	"github.com/kedge/kedge/agent/hostip"
	"github.com/kedge/kedge/embedded/memtune"
	"github.com/kedge/kedge/shared/datadir"
	"github.com/kedge/kedge/shared/sdnotify"
)

// New returns the `agent` command. logger is called once flags are known.
func New(logger func(debug bool) *slog.Logger) *cli.Command {
	return &cli.Command{
		Name:  "agent",
		Usage: "Run a worker node that joins a kedge server",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "server", Aliases: []string{"s"}, EnvVars: []string{"KEDGE_URL"}, Usage: "Server to join, https://SERVER:6443"},
			&cli.StringFlag{Name: "token", Aliases: []string{"t"}, EnvVars: []string{"KEDGE_TOKEN"}, Usage: "Join token (K10<CA hash>::<user>:<secret>)"},
			&cli.StringFlag{Name: "token-file", EnvVars: []string{"KEDGE_TOKEN_FILE"}, Usage: "File holding the join token"},
			&cli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, EnvVars: []string{"KEDGE_DATA_DIR"}, Value: datadir.Default, Usage: "Directory for all state"},
			&cli.StringFlag{Name: "run-dir", EnvVars: []string{"KEDGE_RUN_DIR"}, Value: config.DefaultRunDir, Usage: "Directory for sockets and runtime state"},
			&cli.StringFlag{Name: "registries-file", EnvVars: []string{"KEDGE_REGISTRIES_FILE"}, Value: config.DefaultRegistriesFile, Usage: "Registry mirrors, auth and TLS (becomes containerd's hosts.toml)"},
			&cli.StringFlag{Name: "node-name", EnvVars: []string{"KEDGE_NODE_NAME"}, Usage: "This node's name (default: hostname)"},
			&cli.StringFlag{Name: "node-ip", EnvVars: []string{"KEDGE_NODE_IP"}, Usage: "This node's IP (default: address of the default-route interface)"},
			&cli.StringSliceFlag{Name: "node-external-ip", EnvVars: []string{"KEDGE_NODE_EXTERNAL_IP"}, Usage: "This node's external IP, listed as ExternalIP in the Node's addresses (repeatable, or comma-separated)"},
			&cli.BoolFlag{Name: "with-node-id", EnvVars: []string{"KEDGE_WITH_NODE_ID"}, Usage: "Append a stable random id to the node name (for cloned devices with equal hostnames)"},
			&cli.StringSliceFlag{Name: "node-label", EnvVars: []string{"KEDGE_NODE_LABEL"}, Usage: "key=value label registered with the node (repeatable)"},
			&cli.StringSliceFlag{Name: "node-taint", EnvVars: []string{"KEDGE_NODE_TAINT"}, Usage: "key=value:Effect taint registered with the node (repeatable)"},
			&cli.StringSliceFlag{Name: "kubelet-arg", EnvVars: []string{"KEDGE_KUBELET_ARG"}, Usage: "key=value flag passed to the kubelet (repeatable)"},
			&cli.StringSliceFlag{Name: "kube-proxy-arg", EnvVars: []string{"KEDGE_KUBE_PROXY_ARG"}, Usage: "key=value flag passed to kube-proxy (repeatable; proxy-mode=iptables selects iptables)"},
			&cli.IntFlag{Name: "api-cache-port", EnvVars: []string{"KEDGE_API_CACHE_PORT"}, Value: config.DefaultAPICachePort, Usage: "Loopback port of the local caching API endpoint the node's components use"},
			&cli.BoolFlag{Name: "evict-when-unreachable", EnvVars: []string{"KEDGE_EVICT_WHEN_UNREACHABLE"}, Usage: "Let this node's pods be evicted and rescheduled when the node is unreachable (default: they stay; unset leaves the node's kedge.io/evict-when-unreachable annotation as it is)"},
			&cli.IntFlag{Name: "lb-port", EnvVars: []string{"KEDGE_LB_PORT"}, Value: config.DefaultLBPort, Usage: "Port on 127.0.0.1 of the load balancer in front of all servers, which the node's clients use (0: talk to --server directly)"},
			&cli.StringFlag{Name: "resolv-conf", EnvVars: []string{"KEDGE_RESOLV_CONF"}, Usage: "resolv.conf naming the resolvers the node's cluster DNS forwards names outside the cluster to (default " + config.DefaultResolvConf + "; a loopback resolver such as systemd-resolved's 127.0.0.53 works)"},
			&cli.StringFlag{Name: "local-storage-path", EnvVars: []string{"KEDGE_LOCAL_STORAGE_PATH"}, Usage: "Directory of this node's local-path volumes (default: <data-dir>/storage)"},
			&cli.BoolFlag{Name: "debug", EnvVars: []string{"KEDGE_DEBUG"}, Usage: "Log at debug level"},
		},
		Action: func(c *cli.Context) error {
			cfg := config.Config{
				Server:          c.String("server"),
				Token:           c.String("token"),
				TokenFile:       c.String("token-file"),
				DataDir:         c.String("data-dir"),
				RunDir:          c.String("run-dir"),
				RegistriesFile:  c.String("registries-file"),
				NodeName:        c.String("node-name"),
				NodeIP:          c.String("node-ip"),
				NodeExternalIPs: c.StringSlice("node-external-ip"),
				WithNodeID:      c.Bool("with-node-id"),
				NodeLabels:      c.StringSlice("node-label"),
				NodeTaints:      c.StringSlice("node-taint"),
				KubeletArgs:     c.StringSlice("kubelet-arg"),
				KubeProxyArgs:   c.StringSlice("kube-proxy-arg"),
				APICachePort:    c.Int("api-cache-port"),
				LBPort:          c.Int("lb-port"),
				ResolvConf:      c.String("resolv-conf"),
				Debug:           c.Bool("debug"),
			}
			cfg.LocalStoragePath = c.String("local-storage-path")
			if c.IsSet("evict-when-unreachable") {
				evict := c.Bool("evict-when-unreachable")
				cfg.EvictWhenUnreachable = &evict
			}
			cc, err := cfg.Complete(hostip.Detect)
			if err != nil {
				return err
			}
			memtune.SetGCDefaults()
			// Under systemd (Type=notify, as install.sh writes the
			// unit) the agent is started once every component is ready.
			notifier := sdnotify.Take()
			a := &agent.Agent{Config: cc, Log: logger(cc.Debug)}
			return a.Run(c.Context, func() { _ = notifier.Ready() })
		},
	}
}

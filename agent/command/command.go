// Package command builds the `kedge agent` CLI command.
package command

import (
	"log/slog"

	"github.com/urfave/cli/v2"

	"github.com/kedge/kedge/agent"
	"github.com/kedge/kedge/agent/config"
	"github.com/kedge/kedge/agent/network/hostip"
	"github.com/kedge/kedge/embedded/memtune"
	"github.com/kedge/kedge/shared/cliflags"
	"github.com/kedge/kedge/shared/sdnotify"
)

// New returns the `agent` command. logger is called once flags are known.
func New(logger func(debug bool) *slog.Logger) *cli.Command {
	return &cli.Command{
		Name:  "agent",
		Usage: "Run a worker node that joins a kedge server",
		Flags: append([]cli.Flag{
			cliflags.Config(),
			cliflags.Debug(),
			cliflags.Server("Server to join, https://SERVER:6443"),
			cliflags.Token("Join token (K10<CA hash>::<user>:<secret>)"),
			&cli.StringFlag{Name: "token-file", EnvVars: cliflags.Env("TOKEN_FILE"), Usage: "File holding the join token"},
			cliflags.DataDir("Directory for all state"),
			&cli.StringFlag{Name: "run-dir", EnvVars: cliflags.Env("RUN_DIR"), Value: config.DefaultRunDir, Usage: "Directory for sockets and runtime state"},
			&cli.StringFlag{Name: "registries-file", EnvVars: cliflags.Env("REGISTRIES_FILE"), Value: config.DefaultRegistriesFile, Usage: "Registry mirrors, auth and TLS (becomes containerd's hosts.toml)"},
			&cli.BoolFlag{Name: "with-node-id", EnvVars: cliflags.Env("WITH_NODE_ID"), Usage: "Append a stable random id to the node name (for cloned devices with equal hostnames)"},
			&cli.IntFlag{Name: "api-cache-port", EnvVars: cliflags.Env("API_CACHE_PORT"), Value: config.DefaultAPICachePort, Usage: "Loopback port of the local caching API endpoint the node's components use"},
			&cli.BoolFlag{Name: "evict-when-unreachable", EnvVars: cliflags.Env("EVICT_WHEN_UNREACHABLE"), Usage: "Let this node's pods be evicted and rescheduled when the node is unreachable (default: they stay; unset leaves the node's kedge.io/evict-when-unreachable annotation as it is)"},
			&cli.IntFlag{Name: "lb-port", EnvVars: cliflags.Env("LB_PORT"), Value: config.DefaultLBPort, Usage: "Port on 127.0.0.1 of the load balancer in front of all servers, which the node's clients use (0: talk to --server directly)"},
		}, NodeFlags("This node's")...),
		Before: cliflags.ApplyConfigFileBefore,
		Action: func(c *cli.Context) error {
			cfg := config.Config{
				NodeOptions:    NodeOptions(c),
				Server:         c.String("server"),
				Token:          c.String("token"),
				TokenFile:      c.String("token-file"),
				DataDir:        c.String("data-dir"),
				RunDir:         c.String("run-dir"),
				RegistriesFile: c.String("registries-file"),
				WithNodeID:     c.Bool("with-node-id"),
				APICachePort:   c.Int("api-cache-port"),
				LBPort:         c.Int("lb-port"),
				Debug:          c.Bool("debug"),
			}
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

// Package command builds the `kedge server` CLI command: its flags, the
// config file and KEDGE_* variables, mapped onto config.Config.
package command

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	agentcommand "github.com/kedge/kedge/agent/command"
	"github.com/kedge/kedge/embedded/memtune"
	"github.com/kedge/kedge/server"
	"github.com/kedge/kedge/server/config"
	"github.com/kedge/kedge/server/datastore"
	"github.com/kedge/kedge/server/snapshot"
	"github.com/kedge/kedge/shared/cliflags"
)

// New returns the `server` command. log is called once the flags are known
// (so --debug applies) to obtain the process logger.
func New(logger func(debug bool) *slog.Logger) *cli.Command {
	d := config.Default()
	return &cli.Command{
		Name:  "server",
		Usage: "Run a control-plane node (datastore, kube-apiserver, scheduler, controller-manager)",
		Flags: append([]cli.Flag{
			cliflags.Config(),
			cliflags.Debug(),
			cliflags.DataDir("Directory for all state"),
			&cli.IntFlag{Name: "https-listen-port", EnvVars: cliflags.Env("HTTPS_LISTEN_PORT"), Value: d.HTTPSListenPort, Usage: "Port of the Kubernetes API"},
			&cli.IntFlag{Name: "apiserver-port", EnvVars: cliflags.Env("APISERVER_PORT"), Value: d.APIServerPort, Usage: "Loopback port of kube-apiserver itself, behind the HTTPS port"},
			&cli.StringFlag{Name: "bind-address", EnvVars: cliflags.Env("BIND_ADDRESS"), Value: d.BindAddress, Usage: "Address the API listens on"},
			&cli.StringFlag{Name: "advertise-address", EnvVars: cliflags.Env("ADVERTISE_ADDRESS"), Usage: "Address the API advertises to the cluster (default: node IP)"},
			&cli.StringSliceFlag{Name: "tls-san", EnvVars: cliflags.Env("TLS_SAN"), Usage: "Extra DNS name or IP for the API certificate (repeatable, or comma-separated)"},
			cliflags.Token("Server token (default: generated and stored in <data-dir>/server/token); with --server, the token of the server to join"),
			cliflags.Server("Join the embedded etcd cluster of this server, https://SERVER:6443 (needs --token; later starts use the local data)"),
			&cli.StringFlag{Name: "agent-token", EnvVars: cliflags.Env("AGENT_TOKEN"), Usage: "Token that joins agents but not servers (stored in <data-dir>/server/agent-token)"},
			&cli.StringFlag{Name: "datastore-endpoint", EnvVars: cliflags.Env("DATASTORE_ENDPOINT"), Usage: "sqlite://, postgres://, mysql:// (through kine) or http(s):// (external etcd); default: SQLite in the data dir"},
			&cli.StringFlag{Name: "datastore-cafile", EnvVars: cliflags.Env("DATASTORE_CAFILE"), Usage: "CA for an external etcd"},
			&cli.StringFlag{Name: "datastore-certfile", EnvVars: cliflags.Env("DATASTORE_CERTFILE"), Usage: "Client certificate for an external etcd"},
			&cli.StringFlag{Name: "datastore-keyfile", EnvVars: cliflags.Env("DATASTORE_KEYFILE"), Usage: "Client key for an external etcd"},
			&cli.BoolFlag{Name: "cluster-init", EnvVars: cliflags.Env("CLUSTER_INIT"), Usage: "Use an embedded etcd (later starts reuse it without the flag)"},
			&cli.BoolFlag{Name: "cluster-reset", EnvVars: cliflags.Env("CLUSTER_RESET"), Usage: "Embedded etcd: make this server's member the only one of its cluster, keeping its data, then exit; with --restore-path: restore a snapshot into the data dir, then exit"},
			&cli.StringFlag{Name: "restore-path", EnvVars: cliflags.Env("RESTORE_PATH"), Usage: "Snapshot file (kedge snapshot save) to restore with --cluster-reset; the database in the data dir is kept aside"},
			&cli.IntFlag{Name: "etcd-client-port", EnvVars: cliflags.Env("ETCD_CLIENT_PORT"), Value: d.EtcdClientPort, Usage: "Embedded etcd client port"},
			&cli.IntFlag{Name: "etcd-peer-port", EnvVars: cliflags.Env("ETCD_PEER_PORT"), Value: d.EtcdPeerPort, Usage: "Embedded etcd peer port"},
			&cli.StringSliceFlag{Name: "disable", EnvVars: cliflags.Env("DISABLE"), Usage: "Leave out a packaged add-on and remove it if deployed: coredns, local-storage, metrics-server, servicelb (repeatable)"},
			&cli.BoolFlag{Name: "disable-agent", EnvVars: cliflags.Env("DISABLE_AGENT"), Usage: "Do not run an agent on this server"},
			&cli.StringFlag{Name: "write-kubeconfig", Aliases: []string{"o"}, EnvVars: cliflags.Env("WRITE_KUBECONFIG"), Value: d.WriteKubeconfig, Usage: "Where to write the admin kubeconfig"},
			&cli.StringFlag{Name: "write-kubeconfig-mode", EnvVars: cliflags.Env("WRITE_KUBECONFIG_MODE"), Value: d.WriteKubeconfigMode, Usage: "File mode of the admin kubeconfig"},
			&cli.StringFlag{Name: "cluster-cidr", EnvVars: cliflags.Env("CLUSTER_CIDR"), Value: d.ClusterCIDR, Usage: "Pod network"},
			&cli.StringFlag{Name: "service-cidr", EnvVars: cliflags.Env("SERVICE_CIDR"), Value: d.ServiceCIDR, Usage: "Service network"},
			&cli.StringFlag{Name: "cluster-dns", EnvVars: cliflags.Env("CLUSTER_DNS"), Value: d.ClusterDNS, Usage: "Cluster DNS Service IP"},
			&cli.StringFlag{Name: "cluster-domain", EnvVars: cliflags.Env("CLUSTER_DOMAIN"), Value: d.ClusterDomain, Usage: "Cluster DNS domain"},
			&cli.StringSliceFlag{Name: "kube-apiserver-arg", EnvVars: cliflags.Env("KUBE_APISERVER_ARG"), Usage: "key=value passed to kube-apiserver (repeatable)"},
			&cli.StringSliceFlag{Name: "kube-scheduler-arg", EnvVars: cliflags.Env("KUBE_SCHEDULER_ARG"), Usage: "key=value passed to kube-scheduler (repeatable)"},
			&cli.StringSliceFlag{Name: "kube-controller-manager-arg", EnvVars: cliflags.Env("KUBE_CONTROLLER_MANAGER_ARG"), Usage: "key=value passed to kube-controller-manager (repeatable)"},
			&cli.BoolFlag{Name: "secrets-encryption", EnvVars: cliflags.Env("SECRETS_ENCRYPTION"), Usage: "Encrypt Secrets at rest with a key generated in <data-dir>/server/cred (see kedge secrets-encrypt)"},
			// Scheduled snapshots (kedge snapshot).
			&cli.StringFlag{Name: "snapshot-schedule-cron", EnvVars: cliflags.Env("SNAPSHOT_SCHEDULE_CRON"), Value: d.SnapshotScheduleCron, Usage: "When to take a scheduled snapshot of the SQLite or embedded etcd datastore: 5-field cron expression (minute hour day-of-month month day-of-week) or @every DURATION"},
			&cli.IntFlag{Name: "snapshot-retention", EnvVars: cliflags.Env("SNAPSHOT_RETENTION"), Value: d.SnapshotRetention, Usage: "How many scheduled snapshots to keep (snapshots taken with kedge snapshot save are never pruned)"},
			&cli.StringFlag{Name: "snapshot-dir", EnvVars: cliflags.Env("SNAPSHOT_DIR"), Usage: "Directory of the scheduled snapshots (default: <data-dir>/server/db/snapshots)"},
			&cli.BoolFlag{Name: "disable-snapshots", EnvVars: cliflags.Env("DISABLE_SNAPSHOTS"), Usage: "Take no scheduled snapshots"},
			// Hidden: for tests and the bench, not a user setting.
			&cli.DurationFlag{Name: "datastore-compact-interval", Hidden: true, Usage: "How often kine compacts SQLite (0: 5m)"},
			&cli.DurationFlag{Name: "datastore-maintain-interval", Hidden: true, Usage: "How often kedge vacuums SQLite and truncates its WAL (0: 10m)"},
		}, agentcommand.NodeFlags("This server's node's")...),
		Before: cliflags.ApplyConfigFileBefore,
		Action: func(c *cli.Context) error {
			cc, err := fromFlags(c).Complete()
			if err != nil {
				return err
			}
			if cc.RestorePath != "" {
				if err := snapshot.Restore(snapshot.RestoreRequest{File: cc.RestorePath, DataDir: cc.DataDir, Now: time.Now(), Token: cc.GivenToken,
					EtcdMember: cc.NodeName, EtcdPeerURL: datastore.EtcdPeerURL(cc)}); err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "restored %s into %s; start kedge server without --cluster-reset and --restore-path\n", cc.RestorePath, cc.DataDir)
				return nil
			}
			if cc.ClusterReset {
				if err := server.ResetEtcdMembership(c.Context, cc, logger(cc.Debug), time.Now()); err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "the embedded etcd in %s is now a one-member cluster; start kedge server without --cluster-reset, then re-join the other servers with --server\n", cc.DataDir)
				return nil
			}
			memtune.SetGCDefaults()
			return server.Run(c.Context, cc, logger(cc.Debug))
		},
	}
}

func fromFlags(c *cli.Context) config.Config {
	var sans []string
	for _, s := range c.StringSlice("tls-san") {
		for _, part := range strings.Split(s, ",") {
			if part = strings.TrimSpace(part); part != "" {
				sans = append(sans, part)
			}
		}
	}
	return config.Config{
		NodeOptions:               agentcommand.NodeOptions(c),
		DataDir:                   c.String("data-dir"),
		HTTPSListenPort:           c.Int("https-listen-port"),
		APIServerPort:             c.Int("apiserver-port"),
		AgentToken:                c.String("agent-token"),
		BindAddress:               c.String("bind-address"),
		AdvertiseAddress:          c.String("advertise-address"),
		TLSSANs:                   sans,
		Token:                     c.String("token"),
		Server:                    c.String("server"),
		DatastoreEndpoint:         c.String("datastore-endpoint"),
		DatastoreCAFile:           c.String("datastore-cafile"),
		DatastoreCertFile:         c.String("datastore-certfile"),
		DatastoreKeyFile:          c.String("datastore-keyfile"),
		ClusterInit:               c.Bool("cluster-init"),
		ClusterReset:              c.Bool("cluster-reset"),
		RestorePath:               c.String("restore-path"),
		EtcdClientPort:            c.Int("etcd-client-port"),
		EtcdPeerPort:              c.Int("etcd-peer-port"),
		DisableAgent:              c.Bool("disable-agent"),
		Disable:                   c.StringSlice("disable"),
		WriteKubeconfig:           c.String("write-kubeconfig"),
		WriteKubeconfigMode:       c.String("write-kubeconfig-mode"),
		Debug:                     c.Bool("debug"),
		ClusterCIDR:               c.String("cluster-cidr"),
		ServiceCIDR:               c.String("service-cidr"),
		ClusterDNS:                c.String("cluster-dns"),
		ClusterDomain:             c.String("cluster-domain"),
		KubeAPIServerArgs:         c.StringSlice("kube-apiserver-arg"),
		KubeSchedulerArgs:         c.StringSlice("kube-scheduler-arg"),
		KubeControllerManagerArgs: c.StringSlice("kube-controller-manager-arg"),
		SecretsEncryption:         c.Bool("secrets-encryption"),

		SnapshotScheduleCron:      c.String("snapshot-schedule-cron"),
		SnapshotRetention:         c.Int("snapshot-retention"),
		SnapshotDir:               c.String("snapshot-dir"),
		DisableSnapshots:          c.Bool("disable-snapshots"),
		DatastoreCompactInterval:  c.Duration("datastore-compact-interval"),
		DatastoreMaintainInterval: c.Duration("datastore-maintain-interval"),
	}
}

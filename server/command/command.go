// Package command builds the `kedge server` CLI command: its flags, the
// config file and KEDGE_* variables, mapped onto config.Config.
package command

import (
	"log/slog"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/kedge/kedge/embedded/memtune"
	"github.com/kedge/kedge/server"
	"github.com/kedge/kedge/server/config"
)

// DefaultConfigFile is read when --config is not given, if it exists.
const DefaultConfigFile = "/etc/kedge/config.yaml"

// New returns the `server` command. log is called once the flags are known
// (so --debug applies) to obtain the process logger.
func New(logger func(debug bool) *slog.Logger) *cli.Command {
	d := config.Default()
	return &cli.Command{
		Name:  "server",
		Usage: "Run a control-plane node (datastore, kube-apiserver, scheduler, controller-manager)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, EnvVars: env("CONFIG_FILE"), Value: DefaultConfigFile, Usage: "YAML file whose keys are flag names"},
			&cli.BoolFlag{Name: "debug", EnvVars: env("DEBUG"), Usage: "Log at debug level"},
			&cli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, EnvVars: env("DATA_DIR"), Value: d.DataDir, Usage: "Directory for all state"},
			&cli.IntFlag{Name: "https-listen-port", EnvVars: env("HTTPS_LISTEN_PORT"), Value: d.HTTPSListenPort, Usage: "Port of the Kubernetes API"},
			&cli.IntFlag{Name: "apiserver-port", EnvVars: env("APISERVER_PORT"), Value: d.APIServerPort, Usage: "Loopback port of kube-apiserver itself, behind the HTTPS port"},
			&cli.StringFlag{Name: "bind-address", EnvVars: env("BIND_ADDRESS"), Value: d.BindAddress, Usage: "Address the API listens on"},
			&cli.StringFlag{Name: "advertise-address", EnvVars: env("ADVERTISE_ADDRESS"), Usage: "Address the API advertises to the cluster (default: node IP)"},
			&cli.StringFlag{Name: "node-ip", EnvVars: env("NODE_IP"), Usage: "This node's IP (default: address of the default-route interface)"},
			&cli.StringFlag{Name: "node-name", EnvVars: env("NODE_NAME"), Usage: "This node's name (default: hostname)"},
			&cli.StringSliceFlag{Name: "tls-san", EnvVars: env("TLS_SAN"), Usage: "Extra DNS name or IP for the API certificate (repeatable, or comma-separated)"},
			&cli.StringFlag{Name: "token", Aliases: []string{"t"}, EnvVars: env("TOKEN"), Usage: "Server token (default: generated and stored in <data-dir>/server/token); with --server, the token of the server to join"},
			&cli.StringFlag{Name: "server", Aliases: []string{"s"}, EnvVars: env("URL"), Usage: "Join the embedded etcd cluster of this server, https://SERVER:6443 (needs --token; later starts use the local data)"},
			&cli.StringFlag{Name: "agent-token", EnvVars: env("AGENT_TOKEN"), Usage: "Token that joins agents but not servers (stored in <data-dir>/server/agent-token)"},
			&cli.StringFlag{Name: "datastore-endpoint", EnvVars: env("DATASTORE_ENDPOINT"), Usage: "sqlite://, postgres://, mysql:// (through kine) or http(s):// (external etcd); default: SQLite in the data dir"},
			&cli.StringFlag{Name: "datastore-cafile", EnvVars: env("DATASTORE_CAFILE"), Usage: "CA for an external etcd"},
			&cli.StringFlag{Name: "datastore-certfile", EnvVars: env("DATASTORE_CERTFILE"), Usage: "Client certificate for an external etcd"},
			&cli.StringFlag{Name: "datastore-keyfile", EnvVars: env("DATASTORE_KEYFILE"), Usage: "Client key for an external etcd"},
			&cli.BoolFlag{Name: "cluster-init", EnvVars: env("CLUSTER_INIT"), Usage: "Use an embedded etcd (later starts reuse it without the flag)"},
			&cli.IntFlag{Name: "etcd-client-port", EnvVars: env("ETCD_CLIENT_PORT"), Value: d.EtcdClientPort, Usage: "Embedded etcd client port"},
			&cli.IntFlag{Name: "etcd-peer-port", EnvVars: env("ETCD_PEER_PORT"), Value: d.EtcdPeerPort, Usage: "Embedded etcd peer port"},
			&cli.StringSliceFlag{Name: "disable", EnvVars: env("DISABLE"), Usage: "Leave out a packaged add-on and remove it if deployed: coredns, local-storage, metrics-server, servicelb (repeatable)"},
			&cli.BoolFlag{Name: "disable-agent", EnvVars: env("DISABLE_AGENT"), Usage: "Do not run an agent on this server"},
			&cli.StringFlag{Name: "write-kubeconfig", Aliases: []string{"o"}, EnvVars: env("WRITE_KUBECONFIG"), Value: d.WriteKubeconfig, Usage: "Where to write the admin kubeconfig"},
			&cli.StringFlag{Name: "write-kubeconfig-mode", EnvVars: env("WRITE_KUBECONFIG_MODE"), Value: d.WriteKubeconfigMode, Usage: "File mode of the admin kubeconfig"},
			&cli.StringFlag{Name: "cluster-cidr", EnvVars: env("CLUSTER_CIDR"), Value: d.ClusterCIDR, Usage: "Pod network"},
			&cli.StringFlag{Name: "service-cidr", EnvVars: env("SERVICE_CIDR"), Value: d.ServiceCIDR, Usage: "Service network"},
			&cli.StringFlag{Name: "cluster-dns", EnvVars: env("CLUSTER_DNS"), Value: d.ClusterDNS, Usage: "Cluster DNS Service IP"},
			&cli.StringFlag{Name: "cluster-domain", EnvVars: env("CLUSTER_DOMAIN"), Value: d.ClusterDomain, Usage: "Cluster DNS domain"},
			&cli.StringSliceFlag{Name: "kube-apiserver-arg", EnvVars: env("KUBE_APISERVER_ARG"), Usage: "key=value passed to kube-apiserver (repeatable)"},
			&cli.StringSliceFlag{Name: "kube-scheduler-arg", EnvVars: env("KUBE_SCHEDULER_ARG"), Usage: "key=value passed to kube-scheduler (repeatable)"},
			&cli.StringSliceFlag{Name: "kube-controller-manager-arg", EnvVars: env("KUBE_CONTROLLER_MANAGER_ARG"), Usage: "key=value passed to kube-controller-manager (repeatable)"},
			&cli.StringSliceFlag{Name: "node-label", EnvVars: env("NODE_LABEL"), Usage: "key=value label registered with this server's node (repeatable)"},
			&cli.StringSliceFlag{Name: "node-external-ip", EnvVars: env("NODE_EXTERNAL_IP"), Usage: "This server's node's external IP, listed as ExternalIP in the Node's addresses (repeatable, or comma-separated)"},
			&cli.StringSliceFlag{Name: "node-taint", EnvVars: env("NODE_TAINT"), Usage: "key=value:Effect taint registered with this server's node (repeatable)"},
			&cli.StringSliceFlag{Name: "kubelet-arg", EnvVars: env("KUBELET_ARG"), Usage: "key=value flag passed to this server's kubelet (repeatable)"},
			&cli.StringSliceFlag{Name: "kube-proxy-arg", EnvVars: env("KUBE_PROXY_ARG"), Usage: "key=value flag passed to this server's kube-proxy (repeatable)"},
			&cli.StringFlag{Name: "local-storage-path", EnvVars: env("LOCAL_STORAGE_PATH"), Usage: "Directory of this server's node's local-path volumes (default: <data-dir>/storage)"},
		},
		Before: func(c *cli.Context) error {
			return applyConfigFile(c, c.String("config"), c.IsSet("config"))
		},
		Action: func(c *cli.Context) error {
			cc, err := fromFlags(c).Complete()
			if err != nil {
				return err
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
		DataDir:                   c.String("data-dir"),
		HTTPSListenPort:           c.Int("https-listen-port"),
		APIServerPort:             c.Int("apiserver-port"),
		AgentToken:                c.String("agent-token"),
		BindAddress:               c.String("bind-address"),
		AdvertiseAddress:          c.String("advertise-address"),
		NodeIP:                    c.String("node-ip"),
		NodeName:                  c.String("node-name"),
		TLSSANs:                   sans,
		Token:                     c.String("token"),
		Server:                    c.String("server"),
		DatastoreEndpoint:         c.String("datastore-endpoint"),
		DatastoreCAFile:           c.String("datastore-cafile"),
		DatastoreCertFile:         c.String("datastore-certfile"),
		DatastoreKeyFile:          c.String("datastore-keyfile"),
		ClusterInit:               c.Bool("cluster-init"),
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
		NodeLabels:                c.StringSlice("node-label"),
		NodeTaints:                c.StringSlice("node-taint"),
		NodeExternalIPs:           c.StringSlice("node-external-ip"),
		KubeletArgs:               c.StringSlice("kubelet-arg"),
		KubeProxyArgs:             c.StringSlice("kube-proxy-arg"),
		LocalStoragePath:          c.String("local-storage-path"),
	}
}

func env(name string) []string { return []string{"KEDGE_" + name} }

// Package datadir is the layout of kedge's data dir (default
// /var/lib/kedge) and run dir: every file and directory the server and the
// agent keep there, named once. The server's own node uses the same data
// dir as the server, so both halves of a Layout are the same files.
package datadir

import "path/filepath"

// Default is the data dir when --data-dir is not given.
const Default = "/var/lib/kedge"

// DefaultRunDir holds sockets and runtime state when --run-dir is not given.
const DefaultRunDir = "/run/kedge"

// Server is the server's part of the data dir, <data-dir>/server.
type Server struct {
	ServerDir      string // <data-dir>/server
	DBDir          string // <data-dir>/server/db
	SQLiteFile     string // <data-dir>/server/db/state.db
	EtcdDir        string // <data-dir>/server/db/etcd
	SnapshotsDir   string // <data-dir>/server/db/snapshots: kedge snapshot's default
	TLSDir         string // <data-dir>/server/tls
	CredDir        string // <data-dir>/server/cred: component kubeconfigs
	EtcDir         string // <data-dir>/server/etc: generated component configs
	TokenFile      string // <data-dir>/server/token
	AgentTokenFile string // <data-dir>/server/agent-token
	KineSocket     string // <data-dir>/server/kine.sock
	EgressSocket   string // <data-dir>/server/egress.sock: the apiserver's CONNECT proxy
	ManifestsDir   string // <data-dir>/server/manifests: add-on and user YAML applied at start

	AuthenticationConfig string // etc/authentication-config.yaml (kube-apiserver)
	EgressSelectorConfig string // etc/egress-selector.yaml (kube-apiserver)
	SchedulerKubeconfig  string // cred/scheduler.kubeconfig
	ControllerKubeconfig string // cred/controller.kubeconfig
	// EncryptionConfig is kube-apiserver's encryption provider config with
	// the Secrets encryption keys (--secrets-encryption; 0600).
	EncryptionConfig string // cred/encryption-config.json
}

// NewServer lays out the server's part of dataDir.
func NewServer(dataDir string) Server {
	server := filepath.Join(dataDir, "server")
	db := filepath.Join(server, "db")
	etc := filepath.Join(server, "etc")
	cred := filepath.Join(server, "cred")
	return Server{
		ServerDir:      server,
		DBDir:          db,
		SQLiteFile:     filepath.Join(db, "state.db"),
		EtcdDir:        filepath.Join(db, "etcd"),
		SnapshotsDir:   filepath.Join(db, "snapshots"),
		TLSDir:         filepath.Join(server, "tls"),
		CredDir:        cred,
		EtcDir:         etc,
		TokenFile:      filepath.Join(server, "token"),
		AgentTokenFile: filepath.Join(server, "agent-token"),
		KineSocket:     filepath.Join(server, "kine.sock"),
		EgressSocket:   filepath.Join(server, "egress.sock"),
		ManifestsDir:   filepath.Join(server, "manifests"),

		AuthenticationConfig: filepath.Join(etc, "authentication-config.yaml"),
		EgressSelectorConfig: filepath.Join(etc, "egress-selector.yaml"),
		SchedulerKubeconfig:  filepath.Join(cred, "scheduler.kubeconfig"),
		ControllerKubeconfig: filepath.Join(cred, "controller.kubeconfig"),
		EncryptionConfig:     filepath.Join(cred, "encryption-config.json"),
	}
}

// Agent is the agent's part of the data dir, <data-dir>/agent, its
// local-path volumes and its run dir.
type Agent struct {
	AgentDir     string // <data-dir>/agent
	CredDir      string // <data-dir>/agent/cred: keys, certificates, kubeconfigs (0700)
	ImagesDir    string // <data-dir>/agent/images: tarballs imported at start
	Containerd   string // <data-dir>/agent/containerd
	EtcDir       string // <data-dir>/agent/etc: generated configs
	CacheDir     string // <data-dir>/agent/cache: what the node's components read (0700)
	NodePassword string // <data-dir>/agent/node-password
	RenewRequest string // <data-dir>/agent/cred/renew-requested: kedge certificate rotate asks the agent to renew
	NodeID       string // <data-dir>/agent/node-id (--with-node-id)
	LBServers    string // <data-dir>/agent/lb-servers.json: servers the load balancer learned
	Storage      string // <data-dir>/storage, or --local-storage-path: local-path volumes
	RunDir       string // /run/kedge
	Socket       string // <run-dir>/containerd/containerd.sock

	ContainerdState     string // <run-dir>/containerd
	ContainerdConfig    string // etc/containerd.toml
	KubeletConfig       string // etc/kubelet-config.yaml
	FlannelNetConf      string // etc/flannel/net-conf.json
	CNIConfDir          string // etc/cni/net.d
	RegistriesDir       string // etc/registries.d: containerd's hosts.toml per registry
	KubeletKubeconfig   string // cred/kubelet.kubeconfig
	KubeProxyKubeconfig string // cred/kube-proxy.kubeconfig
}

// NewAgent lays out the agent's part of dataDir and runDir.
func NewAgent(dataDir, runDir string) Agent {
	agent := filepath.Join(dataDir, "agent")
	etc := filepath.Join(agent, "etc")
	cred := filepath.Join(agent, "cred")
	return Agent{
		AgentDir:     agent,
		CredDir:      cred,
		ImagesDir:    filepath.Join(agent, "images"),
		Containerd:   filepath.Join(agent, "containerd"),
		EtcDir:       etc,
		CacheDir:     filepath.Join(agent, "cache"),
		NodePassword: filepath.Join(agent, "node-password"),
		RenewRequest: filepath.Join(cred, "renew-requested"),
		NodeID:       filepath.Join(agent, "node-id"),
		LBServers:    filepath.Join(agent, "lb-servers.json"),
		Storage:      filepath.Join(dataDir, "storage"),
		RunDir:       runDir,
		Socket:       filepath.Join(runDir, "containerd", "containerd.sock"),

		ContainerdState:     filepath.Join(runDir, "containerd"),
		ContainerdConfig:    filepath.Join(etc, "containerd.toml"),
		KubeletConfig:       filepath.Join(etc, "kubelet-config.yaml"),
		FlannelNetConf:      filepath.Join(etc, "flannel", "net-conf.json"),
		CNIConfDir:          filepath.Join(etc, "cni", "net.d"),
		RegistriesDir:       filepath.Join(etc, "registries.d"),
		KubeletKubeconfig:   filepath.Join(cred, "kubelet.kubeconfig"),
		KubeProxyKubeconfig: filepath.Join(cred, "kube-proxy.kubeconfig"),
	}
}

// Package config holds the kedge server's configuration: the values users
// set (Config), their validation, and the derived values the components use
// (Completed).
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	agentconfig "github.com/kedge/kedge/agent/config"
	"github.com/kedge/kedge/shared/datadir"
	"github.com/kedge/kedge/shared/token"
)

// Defaults for the user-facing values.
const (
	DefaultDataDir         = datadir.Default
	DefaultHTTPSPort       = 6443
	DefaultAPIServerPort   = 6444
	DefaultClusterCIDR     = "10.42.0.0/16"
	DefaultServiceCIDR     = "10.43.0.0/16"
	DefaultClusterDNS      = "10.43.0.10"
	DefaultClusterDomain   = "cluster.local"
	DefaultKubeconfig      = "/etc/kedge/kedge.yaml"
	DefaultKubeconfigMode  = "0600"
	DefaultEtcdClientPort  = 2379
	DefaultEtcdPeerPort    = 2380
	DefaultNodeCIDRMaskLen = 24

	// DefaultSnapshotScheduleCron takes a snapshot every 12 hours.
	DefaultSnapshotScheduleCron = "0 */12 * * *"
	DefaultSnapshotRetention    = 5
)

// Addons are the packaged add-ons that --disable may name: each is a
// manifest in the repository's manifests/ (NAME.yaml) and, where it runs
// inside kedge, the in-process part that serves it.
var Addons = []string{"coredns", "local-storage", "metrics-server", "servicelb"}

// Config is what the user sets, through flags, the config file or KEDGE_*
// variables. It holds no runtime objects.
type Config struct {
	// NodeOptions are the server's own node's (unless DisableAgent), as
	// for `kedge agent`; NodeName and NodeIP are the server's too.
	agentconfig.NodeOptions
	DataDir          string
	HTTPSListenPort  int
	APIServerPort    int
	BindAddress      string
	AdvertiseAddress string
	TLSSANs          []string
	Token            string
	AgentToken       string
	// Server is the URL of a running server whose embedded etcd cluster this
	// server joins (with Token, the server token); empty for the first server.
	Server            string
	DatastoreEndpoint string
	DatastoreCAFile   string
	DatastoreCertFile string
	DatastoreKeyFile  string
	ClusterInit       bool
	// ClusterReset with RestorePath restores a snapshot (kedge snapshot
	// save) into the data dir and exits; without, it makes the embedded
	// etcd member the only one of its cluster and exits.
	ClusterReset bool
	RestorePath  string
	DisableAgent bool
	// Disable names packaged add-ons (see Addons) this server leaves out,
	// and removes if they were deployed.
	Disable             []string
	WriteKubeconfig     string
	WriteKubeconfigMode string
	Debug               bool
	ClusterCIDR         string
	ServiceCIDR         string
	ClusterDNS          string
	ClusterDomain       string
	EtcdClientPort      int
	EtcdPeerPort        int

	KubeAPIServerArgs         []string
	KubeSchedulerArgs         []string
	KubeControllerManagerArgs []string

	// SecretsEncryption encrypts Secrets at rest with a key kept in the
	// data dir (server/secretsencrypt). Off by default, for compatibility.
	SecretsEncryption bool
	// Scheduled snapshots (kedge snapshot's, taken by the server that owns
	// its datastore): SnapshotScheduleCron is a 5-field cron expression
	// (or a descriptor such as @every 6h), SnapshotRetention how many
	// scheduled snapshots are kept, SnapshotDir where they go (default
	// <data-dir>/server/db/snapshots).
	SnapshotScheduleCron string
	SnapshotRetention    int
	SnapshotDir          string
	DisableSnapshots     bool

	// Datastore upkeep of kine/SQLite, from hidden flags for tests and the
	// bench (0 = embedded/kine's defaults): how often kine compacts and how
	// often kedge vacuums the freed pages and truncates the WAL.
	DatastoreCompactInterval  time.Duration
	DatastoreMaintainInterval time.Duration
}

// Default returns a Config with every default filled in.
func Default() Config {
	return Config{
		DataDir:             DefaultDataDir,
		HTTPSListenPort:     DefaultHTTPSPort,
		APIServerPort:       DefaultAPIServerPort,
		BindAddress:         "0.0.0.0",
		WriteKubeconfig:     DefaultKubeconfig,
		WriteKubeconfigMode: DefaultKubeconfigMode,
		ClusterCIDR:         DefaultClusterCIDR,
		ServiceCIDR:         DefaultServiceCIDR,
		ClusterDNS:          DefaultClusterDNS,
		ClusterDomain:       DefaultClusterDomain,
		EtcdClientPort:      DefaultEtcdClientPort,
		EtcdPeerPort:        DefaultEtcdPeerPort,

		SnapshotScheduleCron: DefaultSnapshotScheduleCron,
		SnapshotRetention:    DefaultSnapshotRetention,
	}
}

// Validate checks every value without touching the system. It returns all
// problems joined, each naming the flag it is about.
func (c Config) Validate() error {
	_, err := c.check()
	return err
}

// Tokens are the parsed --token and --agent-token (zero when not given).
type Tokens struct{ Server, Agent token.Token }

// check is Validate, returning the tokens it parsed.
func (c Config) check() (Tokens, error) {
	var tokens Tokens
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if c.DataDir == "" {
		bad("--data-dir must not be empty")
	}
	if c.HTTPSListenPort < 1 || c.HTTPSListenPort > 65535 {
		bad("--https-listen-port %d is not a port (1-65535)", c.HTTPSListenPort)
	}
	for name, port := range map[string]int{"--apiserver-port": c.APIServerPort, "--etcd-client-port": c.EtcdClientPort, "--etcd-peer-port": c.EtcdPeerPort} {
		if port < 1 || port > 65535 {
			bad("%s %d is not a port (1-65535)", name, port)
		}
	}
	if c.EtcdClientPort == c.EtcdPeerPort {
		bad("--etcd-client-port and --etcd-peer-port must differ")
	}
	for name, d := range map[string]time.Duration{"--datastore-compact-interval": c.DatastoreCompactInterval, "--datastore-maintain-interval": c.DatastoreMaintainInterval} {
		if d < 0 {
			bad("%s %s must not be negative", name, d)
		}
	}
	if c.APIServerPort == c.HTTPSListenPort {
		bad("--apiserver-port and --https-listen-port must differ")
	}
	for name, v := range map[string]string{"--bind-address": c.BindAddress, "--advertise-address": c.AdvertiseAddress, "--node-ip": c.NodeIP} {
		if v != "" && net.ParseIP(v) == nil {
			bad("%s %q is not an IP address", name, v)
		}
	}
	if ip := net.ParseIP(c.AdvertiseAddress); ip != nil && ip.IsLoopback() {
		bad("--advertise-address %s is a loopback address; other nodes could not reach it", ip)
	} else if ip := net.ParseIP(c.NodeIP); c.AdvertiseAddress == "" && ip != nil && ip.IsLoopback() {
		bad("--node-ip %s is a loopback address; other nodes could not reach it", ip)
	}
	for _, san := range c.TLSSANs {
		if net.ParseIP(san) == nil && !validDNSName(strings.TrimPrefix(san, "*.")) {
			bad("--tls-san %q is neither an IP address nor a DNS name", san)
		}
	}
	var err error
	if c.Token != "" {
		if tokens.Server, err = token.Parse(c.Token); err != nil {
			bad("--token: %w", err)
		} else if tokens.Server.IsBootstrap() {
			bad("--token is a bootstrap token, which joins agents only; a server needs the server token")
		}
	}
	errs = append(errs, c.NodeOptions.Validate())
	if c.ResolvConf != "" {
		if _, err := os.Stat(c.ResolvConf); err != nil {
			bad("--resolv-conf: %w", err)
		}
	}
	for _, name := range c.Disable {
		if !slices.Contains(Addons, name) {
			bad("--disable %q is not an add-on (one of %s)", name, strings.Join(Addons, ", "))
		}
	}
	if c.AgentToken != "" {
		if tokens.Agent, err = token.Parse(c.AgentToken); err != nil {
			bad("--agent-token: %w", err)
		} else if tokens.Agent.IsBootstrap() {
			bad("--agent-token is a bootstrap token; the agent token is a static secret (bootstrap tokens are made with kedge token create)")
		}
		tokens.Agent.Username = token.NodeUser
	}
	clusterNet, errC := parseCIDR("--cluster-cidr", c.ClusterCIDR)
	serviceNet, errS := parseCIDR("--service-cidr", c.ServiceCIDR)
	errs = append(errs, errC, errS)
	if errC == nil && errS == nil && clusterNet.Overlaps(serviceNet) {
		bad("--cluster-cidr %s overlaps --service-cidr %s", clusterNet, serviceNet)
	}
	if errC == nil && clusterNet.Addr().Is4() && clusterNet.Bits() > DefaultNodeCIDRMaskLen {
		bad("--cluster-cidr %s is smaller than one node's /%d", clusterNet, DefaultNodeCIDRMaskLen)
	}
	if dns, err := netip.ParseAddr(c.ClusterDNS); err != nil {
		bad("--cluster-dns %q is not an IP address", c.ClusterDNS)
	} else if errS == nil && !serviceNet.Contains(dns) {
		bad("--cluster-dns %s is outside --service-cidr %s", dns, serviceNet)
	}
	if !validDNSName(c.ClusterDomain) {
		bad("--cluster-domain %q is not a DNS name", c.ClusterDomain)
	}
	if c.RestorePath != "" && !c.ClusterReset {
		bad("--restore-path needs --cluster-reset")
	}
	if !c.DisableSnapshots {
		if _, err := cron.ParseStandard(c.SnapshotScheduleCron); err != nil {
			bad("--snapshot-schedule-cron %q is not a cron expression (5 fields: minute hour day-of-month month day-of-week, like %q): %w", c.SnapshotScheduleCron, DefaultSnapshotScheduleCron, err)
		}
		if c.SnapshotRetention < 1 {
			bad("--snapshot-retention %d: keep at least 1 scheduled snapshot (or --disable-snapshots)", c.SnapshotRetention)
		}
	}
	if err := validateDatastore(c); err != nil {
		errs = append(errs, err)
	}
	if err := validateJoin(c, tokens.Server); err != nil {
		errs = append(errs, err)
	}
	if _, err := ParseFileMode(c.WriteKubeconfigMode); err != nil {
		bad("--write-kubeconfig-mode: %w", err)
	}
	for flag, args := range map[string][]string{
		"--kube-apiserver-arg":          c.KubeAPIServerArgs,
		"--kube-scheduler-arg":          c.KubeSchedulerArgs,
		"--kube-controller-manager-arg": c.KubeControllerManagerArgs,
	} {
		for _, a := range args {
			if k, _, ok := strings.Cut(strings.TrimLeft(a, "-"), "="); !ok || k == "" {
				bad("%s %q is not key=value", flag, a)
			}
		}
	}
	return tokens, errors.Join(errs...)
}

func validateDatastore(c Config) error {
	ep := c.DatastoreEndpoint
	if ep == "" {
		return nil
	}
	if c.ClusterInit {
		return errors.New("--cluster-init and --datastore-endpoint cannot be used together")
	}
	if rest, ok := strings.CutPrefix(ep, "mysql://"); ok {
		// kine takes Go MySQL DSNs (user:pass@tcp(host:port)/db), which are not URLs.
		if rest == "" || strings.Contains(ep, ",") {
			return errors.New("--datastore-endpoint: mysql endpoint must be mysql://user:pass@tcp(host:port)/database")
		}
		return nil
	}
	for _, one := range strings.Split(ep, ",") {
		u, err := url.Parse(one)
		if err != nil {
			return fmt.Errorf("--datastore-endpoint is not a valid URL: %w", redact(err))
		}
		switch u.Scheme {
		case "sqlite":
			if strings.Contains(ep, ",") {
				return errors.New("--datastore-endpoint: a sqlite endpoint cannot be combined with others")
			}
		case "postgres", "postgresql":
			if u.Host == "" && u.Opaque == "" {
				return fmt.Errorf("--datastore-endpoint: %s URL has no host", u.Scheme)
			}
			if strings.Contains(ep, ",") {
				return fmt.Errorf("--datastore-endpoint: a %s endpoint cannot be combined with others", u.Scheme)
			}
		case "http", "https":
			if u.Host == "" {
				return errors.New("--datastore-endpoint: etcd URL has no host")
			}
			if _, port, err := net.SplitHostPort(u.Host); err == nil {
				if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
					return fmt.Errorf("--datastore-endpoint: etcd URL port %q is not a port", port)
				}
			}
		default:
			return fmt.Errorf("--datastore-endpoint scheme %q is not one of sqlite, postgres, mysql, http, https", u.Scheme)
		}
	}
	return nil
}

// validateJoin checks --server: an https URL, with the full server token,
// joining the embedded etcd of an existing server.
func validateJoin(c Config, tok token.Token) error {
	if c.Server == "" {
		return nil
	}
	u, err := url.Parse(c.Server)
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return fmt.Errorf("--server %q is not a URL like https://SERVER:6443", c.Server)
	}
	switch {
	case c.Token == "":
		return errors.New("--server needs --token, the server token of the server to join")
	case c.DatastoreEndpoint != "":
		return errors.New("--server joins the servers' embedded etcd; it cannot be used with --datastore-endpoint (servers on an external datastore share it without joining)")
	case c.ClusterInit:
		return errors.New("--cluster-init starts a new cluster and --server joins one; use only one of them")
	}
	if tok.Secret != "" && tok.CAHash == "" {
		return errors.New("--server needs the full K10... token (with the CA hash) to verify the server")
	}
	return nil
}

// redact strips the URL (which may hold a password) from a url.Parse error.
func redact(err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return uerr.Err
	}
	return err
}

func parseCIDR(flag, s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%s %q is not a CIDR (like 10.42.0.0/16)", flag, s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%s %q has host bits set; did you mean %s?", flag, s, p.Masked())
	}
	return p, nil
}

// ParseFileMode parses an octal permission such as "0600" or "644".
func ParseFileMode(s string) (uint32, error) {
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || m > 0o777 {
		return 0, fmt.Errorf("%q is not an octal file mode like 0600", s)
	}
	return uint32(m), nil
}

func validDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// Package config holds the agent's configuration: the values users set,
// their validation, and the derived paths and identity the components use.
package config

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kedge/kedge/agent/network/resolvconf"
	"github.com/kedge/kedge/shared/datadir"
	"github.com/kedge/kedge/shared/token"
)

// Defaults for `kedge agent`.
const (
	// DefaultAPICachePort is the loopback port of the local caching API
	// endpoint the node's components use.
	DefaultAPICachePort   = 6445
	DefaultRunDir         = datadir.DefaultRunDir
	DefaultRegistriesFile = "/etc/kedge/registries.yaml"
	// DefaultLBPort is the client-side load balancer's port on 127.0.0.1.
	DefaultLBPort = 6444
	// DefaultResolvConf names the host's resolvers, to which the node's
	// cluster DNS forwards names outside the cluster.
	DefaultResolvConf = resolvconf.Default
)

// Config is what the user sets for `kedge agent`.
type Config struct {
	NodeOptions
	Server     string
	Token      string
	TokenFile  string
	DataDir    string
	WithNodeID bool
	// RegistriesFile holds mirrors, auth and TLS for registries.
	RegistriesFile string
	// RunDir holds sockets and runtime state (default /run/kedge).
	RunDir string
	// APICachePort is the loopback port of the local caching API endpoint.
	APICachePort int
	// EvictWhenUnreachable, if set, is recorded on the Node: whether its pods
	// may be evicted while it is unreachable (nil leaves the Node as it is).
	EvictWhenUnreachable *bool
	// LBPort is the client-side load balancer's port on 127.0.0.1 in front
	// of all servers; 0 runs without it (the node talks to Server directly,
	// as the server's own node does).
	LBPort int
	Debug  bool
}

// Validate checks the values without touching the system (except reading
// --token-file).
func (c Config) Validate() error {
	_, err := c.check()
	return err
}

// check is Validate, returning the parsed --token (zero without one).
func (c Config) check() (token.Token, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	u, err := url.Parse(c.Server)
	switch {
	case c.Server == "":
		bad("--server is required (https://SERVER:6443)")
	case err != nil || u.Scheme != "https" || u.Host == "":
		bad("--server %q is not an https:// URL", c.Server)
	}
	if c.Token == "" && c.TokenFile == "" {
		bad("--token or --token-file is required")
	}
	if c.Token != "" && c.TokenFile != "" {
		bad("--token and --token-file cannot be used together")
	}
	var tok token.Token
	if c.Token != "" {
		if tok, err = token.Parse(c.Token); err != nil {
			bad("--token: %w", err)
		}
	}
	if c.DataDir == "" {
		bad("--data-dir must not be empty")
	}
	if c.APICachePort < 0 || c.APICachePort > 65535 {
		bad("--api-cache-port %d is not a port (1-65535)", c.APICachePort)
	}
	if c.APICachePort != 0 && c.APICachePort == c.LBPort {
		bad("--api-cache-port and --lb-port must differ")
	}
	if c.LBPort < 0 || c.LBPort > 65535 {
		bad("--lb-port %d is not a port (1-65535, or 0 for no load balancer)", c.LBPort)
	}
	errs = append(errs, c.NodeOptions.Validate())
	return tok, errors.Join(errs...)
}

// validateNodeArgs checks --node-label, --node-taint, --kubelet-arg and
// --kube-proxy-arg values.
func validateNodeArgs(labels, taints, kubeletArgs, kubeProxyArgs []string) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, l := range labels {
		k, _, ok := strings.Cut(l, "=")
		if !ok || len(validation.IsQualifiedName(k)) > 0 {
			bad("--node-label %q is not key=value", l)
		}
	}
	for _, tn := range taints {
		if _, err := ParseTaint(tn); err != nil {
			bad("--node-taint %q: %w", tn, err)
		}
	}
	for flag, args := range map[string][]string{"--kubelet-arg": kubeletArgs, "--kube-proxy-arg": kubeProxyArgs} {
		for _, a := range args {
			if k, _, ok := strings.Cut(strings.TrimLeft(a, "-"), "="); !ok || k == "" {
				bad("%s %q is not key=value", flag, a)
			}
		}
	}
	return errors.Join(errs...)
}

// validateLocalStoragePath checks --local-storage-path (empty is the
// default).
func validateLocalStoragePath(path string) error {
	if path != "" && filepath.Clean(path) == "/" {
		return errors.New("--local-storage-path must be a directory below /, not / itself")
	}
	return nil
}

// ParseNodeExternalIPs parses --node-external-ip values, each one IP or a
// comma-separated list.
func ParseNodeExternalIPs(values []string) ([]net.IP, error) {
	var ips []net.IP
	var errs []error
	for _, v := range values {
		for _, s := range strings.Split(v, ",") {
			s = strings.TrimSpace(s)
			ip := net.ParseIP(s)
			if ip == nil || ip.IsUnspecified() {
				errs = append(errs, fmt.Errorf("--node-external-ip %q is not an IP address", s))
				continue
			}
			ips = append(ips, ip)
		}
	}
	return ips, errors.Join(errs...)
}

// Taint is a parsed key=value:Effect.
type Taint struct{ Key, Value, Effect string }

// ParseTaint parses key[=value]:Effect.
func ParseTaint(s string) (Taint, error) {
	kv, effect, ok := strings.Cut(s, ":")
	if !ok {
		return Taint{}, errors.New("want key=value:Effect")
	}
	switch effect {
	case "NoSchedule", "PreferNoSchedule", "NoExecute":
	default:
		return Taint{}, fmt.Errorf("effect %q is not NoSchedule, PreferNoSchedule or NoExecute", effect)
	}
	k, v, _ := strings.Cut(kv, "=")
	if len(validation.IsQualifiedName(k)) > 0 {
		return Taint{}, fmt.Errorf("key %q is not a qualified name", k)
	}
	return Taint{Key: k, Value: v, Effect: effect}, nil
}

// Completed is a validated Config with derived values.
type Completed struct {
	Config
	Paths    datadir.Agent
	Token    token.Token
	NodeName string
	NodeIP   net.IP
	// NodeExternalIPs are the parsed --node-external-ip values.
	NodeExternalIPs []net.IP
	// APIServer is the URL the node's clients (kubelet, kube-proxy, the
	// agent) use: the load balancer, or Server when LBPort is 0.
	APIServer string
	// Resolvers is the content of the resolv.conf the cluster DNS forwards
	// to (empty if the default one is missing).
	Resolvers []byte
	// ResolvConfPath is the file Resolvers was read from.
	ResolvConfPath string
	// PodResolvConf is the resolv.conf the kubelet gives pods:
	// ResolvConfPath, or systemd-resolved's file when the default
	// /etc/resolv.conf names only its loopback stub.
	PodResolvConf string
}

// Complete validates c, reads the token file, and derives identity and paths.
// detectIP is called when --node-ip is not set.
func (c Config) Complete(detectIP func() (net.IP, error)) (*Completed, error) {
	tok, err := c.check()
	if err != nil {
		return nil, err
	}
	if c.TokenFile != "" {
		b, err := os.ReadFile(c.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("--token-file: %w", err)
		}
		if tok, err = token.Parse(string(b)); err != nil {
			return nil, fmt.Errorf("--token-file %s: %w", c.TokenFile, err)
		}
	}
	nodeName := c.NodeName
	if nodeName == "" {
		host, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("detect node name: %w; set --node-name", err)
		}
		nodeName = strings.ToLower(host)
	}
	var nodeIP net.IP
	if c.NodeIP != "" {
		nodeIP = net.ParseIP(c.NodeIP)
	} else if nodeIP, err = detectIP(); err != nil {
		return nil, err
	}
	return c.CompleteNode(tok, nodeName, nodeIP)
}

// CompleteNode derives the paths and the rest from c for a node whose token,
// name (before --with-node-id) and IP are known. The server completes its
// own node's config with it; c is not validated again.
func (c Config) CompleteNode(tok token.Token, nodeName string, nodeIP net.IP) (*Completed, error) {
	dataDir, err := filepath.Abs(c.DataDir)
	if err != nil {
		return nil, err
	}
	c.DataDir = dataDir
	runDir := c.RunDir
	if runDir == "" {
		runDir = DefaultRunDir
	}
	cc := &Completed{Config: c, Paths: datadir.NewAgent(dataDir, runDir), Token: tok, APIServer: c.Server,
		NodeName: nodeName, NodeIP: nodeIP}
	if c.LocalStoragePath != "" {
		if cc.Paths.Storage, err = filepath.Abs(c.LocalStoragePath); err != nil {
			return nil, fmt.Errorf("--local-storage-path: %w", err)
		}
	}
	if c.LBPort != 0 {
		cc.APIServer = "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(c.LBPort))
	}
	if c.WithNodeID {
		id, err := nodeID(cc.Paths.NodeID)
		if err != nil {
			return nil, err
		}
		cc.NodeName += "-" + id
	}
	cc.NodeExternalIPs, _ = ParseNodeExternalIPs(c.NodeExternalIPs) // validated
	cc.ResolvConfPath = c.ResolvConf
	if cc.ResolvConfPath == "" {
		cc.ResolvConfPath = DefaultResolvConf
	}
	cc.Resolvers, err = os.ReadFile(cc.ResolvConfPath)
	if err != nil && (c.ResolvConf != "" || !errors.Is(err, os.ErrNotExist)) {
		return nil, fmt.Errorf("--resolv-conf: %w", err)
	}
	cc.PodResolvConf = resolvconf.ForPods(cc.ResolvConfPath, cc.Resolvers, c.ResolvConf != "")
	return cc, nil
}

// LocalAPIAddr is the loopback address of the local caching API endpoint.
func (c *Completed) LocalAPIAddr() string {
	port := c.APICachePort
	if port == 0 {
		port = DefaultAPICachePort
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// LocalAPI is the URL of the local caching API endpoint.
func (c *Completed) LocalAPI() string { return "https://" + c.LocalAPIAddr() }

// nodeID returns the node's stable random id, created (0600) on first use.
// It is read before the data dir's other state, so its directory is created here.
func nodeID(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		if id := strings.TrimSpace(string(b)); id != "" {
			return id, nil
		}
	}
	buf := make([]byte, 4)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	id := hex.EncodeToString(buf)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("--with-node-id: %w", err)
	}
	if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("--with-node-id: %w", err)
	}
	return id, nil
}

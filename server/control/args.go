// Package control renders the command-line arguments and configuration files
// of the control-plane components (kube-apiserver, kube-scheduler,
// kube-controller-manager) from the completed server config. Rendering is
// pure, so it is covered by golden files.
package control

import (
	"encoding/json"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kedge/kedge/embedded/kubeflags"
	"github.com/kedge/kedge/server/config"
	"github.com/kedge/kedge/server/pki"
)

// Storage is how the apiserver reaches its etcd-API datastore.
type Storage struct {
	Servers                   []string
	CAFile, CertFile, KeyFile string
}

// Inputs is everything the renderers need.
type Inputs struct {
	Config  *config.Completed
	TLS     *pki.Files
	Storage Storage
	// EncryptionConfig is the encryption provider config file
	// (server/secretsencrypt.Ensure), "" for none.
	EncryptionConfig string
}

// EgressSelectorConfig sends the apiserver's "cluster" traffic (kubelets:
// logs, exec, attach, port-forward; pod and service proxy; webhooks) to
// kedge's HTTP CONNECT proxy on the unix socket at socketPath, which uses a
// node's reverse tunnel when it has one. A socket needs no client
// certificate, which upstream would read only once, at start.
func EgressSelectorConfig(socketPath string) string {
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	return `apiVersion: apiserver.k8s.io/v1beta1
kind: EgressSelectorConfiguration
egressSelections:
- name: cluster
  connection:
    proxyProtocol: HTTPConnect
    transport:
      uds:
        udsName: ` + q(socketPath) + `
`
}

// AuthenticationConfig allows anonymous requests to the health endpoints only.
const AuthenticationConfig = `apiVersion: apiserver.config.k8s.io/v1
kind: AuthenticationConfiguration
anonymous:
  enabled: true
  conditions:
  - path: /livez
  - path: /readyz
  - path: /healthz
`

// JWKSURI is the service-account key set's URL that the OIDC discovery
// document (/.well-known/openid-configuration) advertises: this server's
// public port at its advertised address. Without it the apiserver names its
// own port, which listens on loopback only. A server bound to loopback only
// names its bind address, the only one that answers.
func JWKSURI(cc *config.Completed) string {
	host := cc.AdvertiseIP
	if bind := net.ParseIP(cc.BindAddress); bind != nil && bind.IsLoopback() {
		host = bind
	}
	return "https://" + net.JoinHostPort(host.String(), strconv.Itoa(cc.HTTPSListenPort)) + "/openid/v1/jwks"
}

// APIServerArgs renders kube-apiserver's arguments.
func APIServerArgs(in Inputs) []string {
	cc, tls := in.Config, in.TLS
	issuer := "https://kubernetes.default.svc." + cc.ClusterDomain
	args := map[string]string{
		"advertise-address":     cc.AdvertiseIP.String(),
		"allow-privileged":      "true",
		"api-audiences":         issuer + ",kedge",
		"authentication-config": cc.Paths.AuthenticationConfig,
		"authorization-mode":    "Node,RBAC",
		// The apiserver itself listens on loopback only; the supervisor
		// serves its handler on the public port.
		"bind-address":                       "127.0.0.1",
		"cert-dir":                           filepath.Join(cc.Paths.TLSDir, "temporary-certs"),
		"client-ca-file":                     tls.ClientCA,
		"egress-selector-config-file":        cc.Paths.EgressSelectorConfig,
		"enable-admission-plugins":           "NodeRestriction",
		"enable-aggregator-routing":          "true", // dial aggregated APIs and webhooks at their endpoints (egress proxy), not at cluster IPs, which need kube-proxy here
		"etcd-servers":                       strings.Join(in.Storage.Servers, ","),
		"kubelet-certificate-authority":      tls.ServerCA,
		"kubelet-client-certificate":         tls.KubeletClientCert,
		"kubelet-client-key":                 tls.KubeletKey,
		"kubelet-preferred-address-types":    "InternalIP,ExternalIP,Hostname",
		"profiling":                          "false",
		"proxy-client-cert-file":             tls.AuthProxyCert,
		"proxy-client-key-file":              tls.AuthProxyKey,
		"requestheader-allowed-names":        "system:auth-proxy",
		"requestheader-client-ca-file":       tls.RequestHeaderCA,
		"requestheader-extra-headers-prefix": "X-Remote-Extra-",
		"requestheader-group-headers":        "X-Remote-Group",
		"requestheader-username-headers":     "X-Remote-User",
		"secure-port":                        strconv.Itoa(cc.APIServerPort),
		// kedge keeps the kubernetes Service's endpoints (the public port).
		"endpoint-reconciler-type":         "none",
		"service-account-issuer":           issuer,
		"service-account-jwks-uri":         JWKSURI(cc),
		"service-account-key-file":         tls.ServiceAccountKey,
		"service-account-signing-key-file": tls.ServiceAccountKey,
		"service-cluster-ip-range":         cc.ServiceCIDR,
		"service-node-port-range":          "30000-32767",
		"storage-backend":                  "etcd3",
		"tls-cert-file":                    tls.ServingCert,
		"tls-private-key-file":             tls.ServingKey,
	}
	if in.Storage.CAFile != "" {
		args["etcd-cafile"] = in.Storage.CAFile
	}
	if in.Storage.CertFile != "" {
		args["etcd-certfile"] = in.Storage.CertFile
		args["etcd-keyfile"] = in.Storage.KeyFile
	}
	if in.EncryptionConfig != "" {
		// Reloaded without a restart when kedge secrets-encrypt rotates keys.
		args["encryption-provider-config"] = in.EncryptionConfig
		args["encryption-provider-config-automatic-reload"] = "true"
	}
	return kubeflags.Render(args, cc.KubeAPIServerArgs)
}

// SchedulerArgs renders kube-scheduler's arguments. Its HTTPS endpoint is off:
// nothing on an edge node scrapes it, and it would cost a port and memory
// (turn it on with --kube-scheduler-arg=secure-port=10259).
func SchedulerArgs(in Inputs) []string {
	kc := in.Config.Paths.SchedulerKubeconfig
	args := map[string]string{
		"authentication-kubeconfig": kc,
		"authorization-kubeconfig":  kc,
		"bind-address":              "127.0.0.1",
		"kubeconfig":                kc,
		// kedge elects the one server that runs the scheduler and the
		// controller-manager (server/controllers/leader); upstream's election would end
		// the process on a lost lease.
		"leader-elect": "false",
		"profiling":    "false",
		"secure-port":  "0",
	}
	return kubeflags.Render(args, in.Config.KubeSchedulerArgs)
}

// ControllerManagerArgs renders kube-controller-manager's arguments.
func ControllerManagerArgs(in Inputs) []string {
	cc, tls := in.Config, in.TLS
	kc := cc.Paths.ControllerKubeconfig
	args := map[string]string{
		"allocate-node-cidrs":       "true",
		"authentication-kubeconfig": kc,
		"authorization-kubeconfig":  kc,
		"bind-address":              "127.0.0.1",
		"cluster-cidr":              cc.ClusterCIDR,
		"cluster-signing-kube-apiserver-client-cert-file": tls.ClientCA,
		"cluster-signing-kube-apiserver-client-key-file":  tls.ClientCAKey,
		"cluster-signing-kubelet-client-cert-file":        tls.ClientCA,
		"cluster-signing-kubelet-client-key-file":         tls.ClientCAKey,
		"cluster-signing-kubelet-serving-cert-file":       tls.ServerCA,
		"cluster-signing-kubelet-serving-key-file":        tls.ServerCAKey,
		"cluster-signing-legacy-unknown-cert-file":        tls.ServerCA,
		"cluster-signing-legacy-unknown-key-file":         tls.ServerCAKey,
		"kubeconfig":                       kc,
		"leader-elect":                     "false", // see SchedulerArgs
		"profiling":                        "false",
		"root-ca-file":                     tls.ServerCA,
		"secure-port":                      "0",
		"service-account-private-key-file": tls.ServiceAccountKey,
		"service-cluster-ip-range":         cc.ServiceCIDR,
		"terminated-pod-gc-threshold":      "1000",
		// kedge runs its own taint-eviction controller (embedded/tainteviction);
		// the token-cleaner (off by default upstream) removes expired
		// bootstrap tokens (kedge token create).
		"controllers":                     "*,-taint-eviction-controller,token-cleaner-controller",
		"use-service-account-credentials": "true",
	}
	if p, err := netip.ParsePrefix(cc.ClusterCIDR); err == nil && p.Addr().Is6() {
		args["node-cidr-mask-size"] = "64"
	} else {
		args["node-cidr-mask-size"] = strconv.Itoa(config.DefaultNodeCIDRMaskLen)
	}
	return kubeflags.Render(args, cc.KubeControllerManagerArgs)
}

// APIServerURL is the apiserver's own loopback URL, for the control-plane
// components in this process.
func APIServerURL(cc *config.Completed) string {
	return "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(cc.APIServerPort))
}

// LocalURL is the public API URL (the supervisor) for clients on this host.
func LocalURL(cc *config.Completed) string {
	host := cc.BindAddress
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "https://" + net.JoinHostPort(host, strconv.Itoa(cc.HTTPSListenPort))
}

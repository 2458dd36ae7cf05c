// Package clusterdns is the node's cluster DNS: CoreDNS in the agent
// process, answering on the node's IP at Port for the names of the
// cluster's Services and Pods (read through the agent's local caching API
// endpoint, so it keeps answering while the node is cut off from the
// servers) and forwarding other names to the host's resolvers.
//
// Pods reach it at the cluster DNS address through the kube-dns Service in
// kube-system, which has no selector, internalTrafficPolicy Local and one
// EndpointSlice per node (kept by the server) naming that node's IP and
// Port: kube-proxy sends each pod's queries to its own node. The agent
// serves only while that Service carries ManagedLabel, so
// `kedge server --disable coredns` (which removes it) turns DNS off on
// every node.
package clusterdns

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/kedge/kedge/agent/network/resolvconf"
)

// The contract between the agent, the server's EndpointSlice controller and
// manifests/coredns.yaml.
const (
	// Port is the UDP and TCP port the node's DNS listens on at the node
	// IP; it stays clear of a host DNS server on 53.
	Port = 10053
	// Namespace and ServiceName name the cluster DNS Service.
	Namespace   = "kube-system"
	ServiceName = "kube-dns"
	// ManagedLabel (value "true") marks the kube-dns Service that kedge's
	// agents serve.
	ManagedLabel = "kedge.io/dns-in-agent"
	// PortName and TCPPortName are the Service's and EndpointSlices' port
	// names for 53/UDP and 53/TCP.
	PortName    = "dns"
	TCPPortName = "dns-tcp"
)

// Inputs is what the Corefile is rendered from.
type Inputs struct {
	// NodeIP is the address to listen on.
	NodeIP net.IP
	// Port to listen on (UDP and TCP).
	Port int
	// ClusterDomain is the cluster's DNS domain (cluster.local).
	ClusterDomain string
	// Kubeconfig is the identity the kubernetes plugin lists and watches
	// Services, EndpointSlices and Namespaces with.
	Kubeconfig string
	// Upstreams are host:port resolvers other names go to; none answers
	// them SERVFAIL.
	Upstreams []string
	// AllowFrom are the source networks (CIDRs) answered; queries from
	// anywhere else are REFUSED, so the node's address is no open resolver
	// for its LAN. Empty answers everyone.
	AllowFrom []string
}

// Corefile renders the CoreDNS configuration: the cluster domain and the
// reverse zones from the kubernetes plugin (pod names by IP, "pods
// insecure", as kube-dns did), everything else forwarded to Upstreams, a
// 30 s cache, A/AAAA answers shuffled, queries only from AllowFrom. It leaves out CoreDNS's loop plugin,
// which exits the process when it detects a loop.
func Corefile(in Inputs) string {
	var b strings.Builder
	fmt.Fprintf(&b, ".:%d {\n", in.Port)
	fmt.Fprintf(&b, "    bind %s\n", in.NodeIP)
	b.WriteString("    errors\n")
	if len(in.AllowFrom) > 0 {
		b.WriteString("    acl {\n")
		fmt.Fprintf(&b, "        allow net %s\n", strings.Join(in.AllowFrom, " "))
		b.WriteString("        block\n")
		b.WriteString("    }\n")
	}
	fmt.Fprintf(&b, "    kubernetes %s in-addr.arpa ip6.arpa {\n", strings.TrimSuffix(in.ClusterDomain, "."))
	fmt.Fprintf(&b, "        kubeconfig %s\n", quote(in.Kubeconfig))
	b.WriteString("        pods insecure\n")
	b.WriteString("        fallthrough in-addr.arpa ip6.arpa\n")
	b.WriteString("        ttl 30\n")
	b.WriteString("    }\n")
	if len(in.Upstreams) > 0 {
		fmt.Fprintf(&b, "    forward . %s {\n", strings.Join(in.Upstreams, " "))
		b.WriteString("        policy sequential\n")
		b.WriteString("    }\n")
	}
	b.WriteString("    cache 30\n")
	b.WriteString("    loadbalance\n")
	b.WriteString("}\n")
	return b.String()
}

// quote makes a path one Corefile token.
func quote(s string) string {
	if strings.ContainsAny(s, " \t\"{}#") {
		return strconv.Quote(s)
	}
	return s
}

// Upstreams returns the nameservers of a resolv.conf as host:port (port
// 53), in order. Loopback resolvers such as systemd-resolved's 127.0.0.53
// are kept: the agent runs in the host's network namespace and reaches
// them.
func Upstreams(resolvConf []byte) []string {
	var out []string
	for _, ns := range resolvconf.Nameservers(resolvConf) {
		out = append(out, net.JoinHostPort(ns, "53"))
	}
	return out
}

// Package servicelb gives Services of type LoadBalancer the addresses of
// the cluster's nodes as their ingress, without pods: kube-proxy on every
// node already forwards traffic for a Service's load-balancer IPs, so once
// a node's IP is in status.loadBalancer.ingress, the Service answers on its
// port at that IP.
//
// It handles Services without a loadBalancerClass. A node is used while it
// is Ready and lacks the label node.kubernetes.io/exclude-from-external-load-balancers;
// for externalTrafficPolicy Local only nodes that run one of the Service's
// ready endpoints are used. Two Services cannot share a port on the same
// addresses: the older one keeps it and the newer gets no ingress until the
// port is free.
package servicelb

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// ExcludeLabel on a Node keeps its addresses out of every Service's ingress.
const ExcludeLabel = corev1.LabelNodeExcludeBalancers

// Handled reports whether the controller owns svc's load-balancer status.
func Handled(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Spec.LoadBalancerClass == nil && svc.DeletionTimestamp == nil
}

// Result is the ingress each handled Service should have, by "ns/name".
// Blocked names the Services left without ingress, with the reason.
type Result struct {
	Ingress map[string][]string
	Blocked map[string]string
}

// Desired computes the ingress of every handled Service in svcs from the
// nodes and the EndpointSlices. It is pure; the order of the inputs does
// not matter.
//
// reserved maps ports kedge itself serves on the nodes' addresses ("TCP/6443")
// to what serves them: a Service asking for one gets no ingress, so that it
// cannot take over the API, the kubelet or the node network.
func Desired(svcs []*corev1.Service, nodes []*corev1.Node, slices_ []*discoveryv1.EndpointSlice, reserved map[string]string) Result {
	res := Result{Ingress: map[string][]string{}, Blocked: map[string]string{}}
	handled := make([]*corev1.Service, 0, len(svcs))
	for _, s := range svcs {
		if Handled(s) {
			handled = append(handled, s)
		}
	}
	// Older Services win a port. Creation times have 1 s resolution: among
	// Services of the same second, one that already has ingress keeps it,
	// so a port never moves to a Service made just after.
	slices.SortFunc(handled, func(a, b *corev1.Service) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		if ha, hb := len(a.Status.LoadBalancer.Ingress) > 0, len(b.Status.LoadBalancer.Ingress) > 0; ha != hb {
			if ha {
				return -1
			}
			return 1
		}
		return cmp.Compare(key(a), key(b))
	})
	usable := usableNodes(nodes)
	local := nodesWithReadyEndpoints(slices_)
	taken := map[string]string{} // "TCP/80" -> Service holding it
	for _, s := range handled {
		k := key(s)
		if what, port := conflict(s, reserved); what != "" {
			res.Blocked[k] = fmt.Sprintf("port %s is kedge's own (%s) on the nodes' addresses", port, what)
			continue
		}
		if holder, port := conflict(s, taken); holder != "" {
			res.Blocked[k] = fmt.Sprintf("port %s is already used by LoadBalancer Service %s", port, holder)
			continue
		}
		for _, p := range s.Spec.Ports {
			taken[portKey(p)] = k
		}
		var ips []string
		for _, n := range usable {
			if s.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal && !local[k][n.Name] {
				continue
			}
			for _, ip := range nodeIPs(n) {
				if familyOK(s, ip) && !slices.Contains(ips, ip.String()) {
					ips = append(ips, ip.String())
				}
			}
		}
		res.Ingress[k] = ips
	}
	return res
}

func key(s *corev1.Service) string { return s.Namespace + "/" + s.Name }

func portKey(p corev1.ServicePort) string {
	proto := p.Protocol
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	return PortKey(proto, p.Port)
}

// PortKey names a port as the reserved map of Desired does: "TCP/6443".
func PortKey(proto corev1.Protocol, port int32) string { return fmt.Sprintf("%s/%d", proto, port) }

func conflict(s *corev1.Service, taken map[string]string) (holder, port string) {
	for _, p := range s.Spec.Ports {
		if h, ok := taken[portKey(p)]; ok {
			return h, portKey(p)
		}
	}
	return "", ""
}

// usableNodes are the Ready, not excluded, not deleted nodes, by name.
func usableNodes(nodes []*corev1.Node) []*corev1.Node {
	var out []*corev1.Node
	for _, n := range nodes {
		if n.DeletionTimestamp != nil {
			continue
		}
		if _, excluded := n.Labels[ExcludeLabel]; excluded {
			continue
		}
		if !ready(n) {
			continue
		}
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b *corev1.Node) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func ready(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// nodeIPs are a node's InternalIPs, then its ExternalIPs.
func nodeIPs(n *corev1.Node) []netip.Addr {
	var out []netip.Addr
	for _, t := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP} {
		for _, a := range n.Status.Addresses {
			if a.Type != t {
				continue
			}
			if ip, err := netip.ParseAddr(a.Address); err == nil {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out
}

// familyOK reports whether ip is of one of the Service's IP families (any,
// if the Service lists none).
func familyOK(s *corev1.Service, ip netip.Addr) bool {
	if len(s.Spec.IPFamilies) == 0 {
		return true
	}
	want := corev1.IPv4Protocol
	if ip.Is6() {
		want = corev1.IPv6Protocol
	}
	return slices.Contains(s.Spec.IPFamilies, want)
}

// nodesWithReadyEndpoints maps "ns/service" to the nodes that run one of
// its ready endpoints.
func nodesWithReadyEndpoints(eps []*discoveryv1.EndpointSlice) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, es := range eps {
		svc := es.Labels[discoveryv1.LabelServiceName]
		if svc == "" {
			continue
		}
		k := es.Namespace + "/" + svc
		for _, e := range es.Endpoints {
			if e.NodeName == nil || (e.Conditions.Ready != nil && !*e.Conditions.Ready) {
				continue
			}
			if out[k] == nil {
				out[k] = map[string]bool{}
			}
			out[k][*e.NodeName] = true
		}
	}
	return out
}

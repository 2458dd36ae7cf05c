// Package nodeips carries a node's addresses on its Node object: the agent
// publishes them as annotations (it knows its --node-ip and
// --node-external-ip), and the server's cloud provider
// (server/controllers/kedgecloud) reads them to initialize the Node.
package nodeips

import (
	"errors"
	"fmt"
	"net"
	"strings"

	corev1 "k8s.io/api/core/v1"
	cloudproviderapi "k8s.io/cloud-provider/api"
)

const (
	// InternalIPAnnotation holds the node's --node-ip. The agent sets it
	// on every start; a Node without it is not initialized yet.
	InternalIPAnnotation = "kedge.io/internal-ip"
	// ExternalIPAnnotation holds the node's --node-external-ip values,
	// comma-separated; the agent removes it when there are none.
	ExternalIPAnnotation = "kedge.io/external-ip"
)

// ErrNotPublished is returned for a Node whose agent has not set
// InternalIPAnnotation yet; the cloud node controller retries it.
var ErrNotPublished = errors.New("the agent has not published the node's addresses yet (annotation " + InternalIPAnnotation + ")")

// Uninitialized reports whether node has the taint
// node.cloudprovider.kubernetes.io/uninitialized, which a kubelet with
// --cloud-provider=external registers with and the cloud node controller
// removes.
func Uninitialized(node *corev1.Node) bool {
	for _, t := range node.Spec.Taints {
		if t.Key == cloudproviderapi.TaintExternalCloudProvider {
			return true
		}
	}
	return false
}

// Addresses returns the node's InternalIP addresses, then its ExternalIP
// addresses, from its annotations. It fails with ErrNotPublished when
// InternalIPAnnotation is missing, and on a value that is not a list of IPs.
func Addresses(node *corev1.Node) ([]corev1.NodeAddress, error) {
	internal, ok := node.Annotations[InternalIPAnnotation]
	if !ok {
		return nil, ErrNotPublished
	}
	var addrs []corev1.NodeAddress
	for _, a := range []struct {
		key  string
		typ  corev1.NodeAddressType
		list string
	}{
		{InternalIPAnnotation, corev1.NodeInternalIP, internal},
		{ExternalIPAnnotation, corev1.NodeExternalIP, node.Annotations[ExternalIPAnnotation]},
	} {
		ips, err := ParseIPs(a.list)
		if err != nil {
			return nil, fmt.Errorf("node %s: annotation %s: %w", node.Name, a.key, err)
		}
		for _, ip := range ips {
			addrs = append(addrs, corev1.NodeAddress{Type: a.typ, Address: ip.String()})
		}
	}
	if len(addrs) == 0 || addrs[0].Type != corev1.NodeInternalIP {
		return nil, fmt.Errorf("node %s: annotation %s is empty", node.Name, InternalIPAnnotation)
	}
	return addrs, nil
}

// ParseIPs parses a comma-separated list of IPs ("" is the empty list).
func ParseIPs(list string) ([]net.IP, error) {
	var ips []net.IP
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, fmt.Errorf("%q is not an IP address", s)
		}
		ips = append(ips, ip)
	}
	return ips, nil
}

// JoinIPs formats ips as a ParseIPs list.
func JoinIPs(ips []net.IP) string {
	s := make([]string, len(ips))
	for i, ip := range ips {
		s[i] = ip.String()
	}
	return strings.Join(s, ",")
}

// Package kedgecloud is the "kedge" cloud provider: the minimal
// k8s.io/cloud-provider Interface that upstream's cloud node controller
// needs to initialize the Nodes of kubelets run with
// --cloud-provider=external. A kedge node has no cloud to ask, so its
// addresses come from annotations its agent sets on its own Node
// (InternalIPAnnotation, ExternalIPAnnotation); every instance exists and
// is named kedge://<node>.
package kedgecloud

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	corev1 "k8s.io/api/core/v1"
	cloudprovider "k8s.io/cloud-provider"
	cloudproviderapi "k8s.io/cloud-provider/api"
)

const (
	// ProviderName is the provider's name and the scheme of its provider IDs.
	ProviderName = "kedge"
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

// Provider implements cloudprovider.Interface with instances only. It
// holds no state and is safe for concurrent use.
type Provider struct{}

var (
	_ cloudprovider.Interface   = Provider{}
	_ cloudprovider.InstancesV2 = Provider{}
)

// Initialize implements cloudprovider.Interface; there is nothing to start.
func (Provider) Initialize(cloudprovider.ControllerClientBuilder, <-chan struct{}) {}

// LoadBalancer implements cloudprovider.Interface: not supported.
func (Provider) LoadBalancer() (cloudprovider.LoadBalancer, bool) { return nil, false }

// Instances implements cloudprovider.Interface: not supported (InstancesV2 is).
func (Provider) Instances() (cloudprovider.Instances, bool) { return nil, false }

// InstancesV2 implements cloudprovider.Interface.
func (p Provider) InstancesV2() (cloudprovider.InstancesV2, bool) { return p, true }

// Zones implements cloudprovider.Interface: not supported.
func (Provider) Zones() (cloudprovider.Zones, bool) { return nil, false }

// Clusters implements cloudprovider.Interface: not supported.
func (Provider) Clusters() (cloudprovider.Clusters, bool) { return nil, false }

// Routes implements cloudprovider.Interface: not supported (flannel routes).
func (Provider) Routes() (cloudprovider.Routes, bool) { return nil, false }

// ProviderName implements cloudprovider.Interface.
func (Provider) ProviderName() string { return ProviderName }

// HasClusterID implements cloudprovider.Interface: kedge needs no cluster ID.
func (Provider) HasClusterID() bool { return false }

// InstanceExists implements cloudprovider.InstancesV2: a registered kedge
// node always exists (nodes are removed with kubectl, not by a cloud).
func (Provider) InstanceExists(context.Context, *corev1.Node) (bool, error) { return true, nil }

// InstanceShutdown implements cloudprovider.InstancesV2: never shut down.
func (Provider) InstanceShutdown(context.Context, *corev1.Node) (bool, error) { return false, nil }

// InstanceMetadata implements cloudprovider.InstancesV2 with ProviderID and
// the addresses from Addresses. The controller keeps the kubelet's Hostname
// address, since the provider returns none. A Node that is not tainted
// uninitialized and has no annotations (its agent predates them) gets no
// addresses, which leaves the kubelet's as they are.
func (Provider) InstanceMetadata(_ context.Context, node *corev1.Node) (*cloudprovider.InstanceMetadata, error) {
	md := &cloudprovider.InstanceMetadata{ProviderID: ProviderID(node.Name)}
	addrs, err := Addresses(node)
	if errors.Is(err, ErrNotPublished) && !Uninitialized(node) {
		return md, nil
	}
	if err != nil {
		return nil, err
	}
	md.NodeAddresses = addrs
	return md, nil
}

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

// ProviderID is the provider ID of the node named name.
func ProviderID(name string) string { return ProviderName + "://" + name }

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

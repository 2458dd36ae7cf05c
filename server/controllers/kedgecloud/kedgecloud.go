// Package kedgecloud is the "kedge" cloud provider: the minimal
// k8s.io/cloud-provider Interface that upstream's cloud node controller
// needs to initialize the Nodes of kubelets run with
// --cloud-provider=external. A kedge node has no cloud to ask, so its
// addresses come from annotations its agent sets on its own Node
// (nodeips.InternalIPAnnotation, nodeips.ExternalIPAnnotation); every instance exists and
// is named kedge://<node>.
package kedgecloud

import (
	"context"
	"errors"

	corev1 "k8s.io/api/core/v1"
	cloudprovider "k8s.io/cloud-provider"

	"github.com/kedge/kedge/shared/nodeips"
)

// ProviderName is the provider's name and the scheme of its provider IDs.
const ProviderName = "kedge"

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
	addrs, err := nodeips.Addresses(node)
	if errors.Is(err, nodeips.ErrNotPublished) && !nodeips.Uninitialized(node) {
		return md, nil
	}
	if err != nil {
		return nil, err
	}
	md.NodeAddresses = addrs
	return md, nil
}

// ProviderID is the provider ID of the node named name.
func ProviderID(name string) string { return ProviderName + "://" + name }

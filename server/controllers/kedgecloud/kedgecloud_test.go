package kedgecloud

import (
	"errors"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	cloudproviderapi "k8s.io/cloud-provider/api"
	cloudnodeutil "k8s.io/cloud-provider/node/helpers"

	"github.com/kedge/kedge/shared/nodeips"
)

func node(annotations map[string]string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Annotations: annotations}}
}

// TestInstanceMetadataWithProvidedNodeIP checks the metadata against what
// upstream's cloud node controller does with it: the kubelet's
// --node-ip (annotation alpha.kubernetes.io/provided-node-ip) must be among
// the addresses, and stays the first InternalIP.
func TestInstanceMetadataWithProvidedNodeIP(t *testing.T) {
	n := node(map[string]string{
		nodeips.InternalIPAnnotation:                   "10.0.0.5",
		nodeips.ExternalIPAnnotation:                   "203.0.113.7",
		cloudproviderapi.AnnotationAlphaProvidedIPAddr: "10.0.0.5",
	})
	md, err := Provider{}.InstanceMetadata(t.Context(), n)
	if err != nil {
		t.Fatal(err)
	}
	if md.ProviderID != "kedge://n1" {
		t.Fatalf("provider ID = %q", md.ProviderID)
	}
	got, err := cloudnodeutil.GetNodeAddressesFromNodeIP(n.Annotations[cloudproviderapi.AnnotationAlphaProvidedIPAddr], md.NodeAddresses)
	if err != nil {
		t.Fatal(err)
	}
	want := []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.5"}, {Type: corev1.NodeExternalIP, Address: "203.0.113.7"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("addresses = %v, want %v", got, want)
	}
	if _, ok := (Provider{}).InstancesV2(); !ok {
		t.Fatal("InstancesV2 not supported")
	}
	if exists, err := (Provider{}).InstanceExists(t.Context(), n); !exists || err != nil {
		t.Fatalf("InstanceExists = %v, %v", exists, err)
	}
}

func TestInstanceMetadataBeforePublishing(t *testing.T) {
	n := node(nil)
	if md, err := (Provider{}).InstanceMetadata(t.Context(), n); err != nil || len(md.NodeAddresses) != 0 || md.ProviderID != "kedge://n1" {
		t.Fatalf("initialized node without annotations: %+v, %v; want no addresses (the kubelet's stay)", md, err)
	}
	n.Spec.Taints = []corev1.Taint{{Key: cloudproviderapi.TaintExternalCloudProvider, Value: "true", Effect: corev1.TaintEffectNoSchedule}}
	if _, err := (Provider{}).InstanceMetadata(t.Context(), n); !errors.Is(err, nodeips.ErrNotPublished) {
		t.Fatalf("uninitialized node without annotations: err = %v, want nodeips.ErrNotPublished (the controller retries)", err)
	}
}

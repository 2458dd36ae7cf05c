package publish

import (
	"context"
	"fmt"
	"net"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// ManagedBy is the endpointslice.kubernetes.io/managed-by value of the
// slices written here (the upstream EndpointSlice controllers leave them alone).
const ManagedBy = "kedge"

// Slice is the EndpointSlice namespace/name of the Service of the same
// name: ips (ready) at TCP port, named portName. The address type is the
// IP family of family.
func Slice(namespace, name string, ips []string, family net.IP, portName string, port int32) *discoveryv1.EndpointSlice {
	addrType := discoveryv1.AddressTypeIPv4
	if family.To4() == nil {
		addrType = discoveryv1.AddressTypeIPv6
	}
	eps := make([]discoveryv1.Endpoint, 0, len(ips))
	for _, ip := range ips {
		eps = append(eps, discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}})
	}
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace,
			Labels: map[string]string{discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: ManagedBy}},
		AddressType: addrType,
		Endpoints:   eps,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To(portName), Port: ptr.To(port), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
}

// WriteSlice creates want, or updates the existing slice of its name when
// its labels, address type, endpoints, ports or owner references differ
// (other fields and metadata are kept). Several servers may write the same
// slice; one that loses a conflict returns the error and writes again at
// its next tick.
func WriteSlice(ctx context.Context, client kubernetes.Interface, want *discoveryv1.EndpointSlice) error {
	api := client.DiscoveryV1().EndpointSlices(want.Namespace)
	cur, err := api.Get(ctx, want.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = api.Create(ctx, want, metav1.CreateOptions{})
	case err == nil:
		if sameSlice(cur, want) {
			return nil
		}
		cur.Labels, cur.AddressType, cur.Endpoints, cur.Ports = want.Labels, want.AddressType, want.Endpoints, want.Ports
		cur.OwnerReferences = want.OwnerReferences
		_, err = api.Update(ctx, cur, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("write endpointslice %s/%s: %w", want.Namespace, want.Name, err)
	}
	return nil
}

func sameSlice(cur, want *discoveryv1.EndpointSlice) bool {
	return equality.Semantic.DeepEqual(cur.Labels, want.Labels) && cur.AddressType == want.AddressType &&
		equality.Semantic.DeepEqual(cur.Endpoints, want.Endpoints) && equality.Semantic.DeepEqual(cur.Ports, want.Ports) &&
		equality.Semantic.DeepEqual(cur.OwnerReferences, want.OwnerReferences)
}

// Package endpoints keeps the default/kubernetes Endpoints and EndpointSlice
// pointing at the servers' public HTTPS port (the supervisor), because the
// apiserver itself listens on a loopback port.
package endpoints

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/kedge/kedge/embedded/component"
)

// Reconciler writes the kubernetes Service's endpoints every Interval.
type Reconciler struct {
	Client kubernetes.Interface
	// IP and Port are this server's public address.
	IP       net.IP
	Port     int32
	Interval time.Duration
	Log      *slog.Logger
}

var _ component.Component = (*Reconciler)(nil)

// Name implements component.Component.
func (r *Reconciler) Name() string { return "kubernetes-endpoints" }

// Run is ready after the first successful write and repairs drift until ctx ends.
func (r *Reconciler) Run(ctx context.Context, ready func()) error {
	interval := r.Interval
	if interval <= 0 {
		interval = 30 * time.Second
	}
	for {
		if err := r.reconcile(ctx); err != nil {
			if ctx.Err() == nil {
				r.Log.Warn("update kubernetes endpoints", "error", err)
			}
		} else {
			ready()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}

const (
	namespace = metav1.NamespaceDefault
	name      = "kubernetes"
	portName  = "https"
)

func (r *Reconciler) reconcile(ctx context.Context) error {
	ip := r.IP.String()
	want := &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace,
			Labels: map[string]string{discoveryv1.LabelSkipMirror: "true"}},
		Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: ip}},
			Ports:     []corev1.EndpointPort{{Name: portName, Port: r.Port, Protocol: corev1.ProtocolTCP}},
		}},
	}
	eps := r.Client.CoreV1().Endpoints(namespace)
	cur, err := eps.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if _, err := eps.Create(ctx, want, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create endpoints: %w", err)
		}
	case err != nil:
		return err
	default:
		cur.Subsets, cur.Labels = want.Subsets, want.Labels
		if _, err := eps.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update endpoints: %w", err)
		}
	}

	family := discoveryv1.AddressTypeIPv4
	if r.IP.To4() == nil {
		family = discoveryv1.AddressTypeIPv6
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace,
			Labels: map[string]string{discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: "kedge"}},
		AddressType: family,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To(portName), Port: ptr.To(r.Port), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	slices := r.Client.DiscoveryV1().EndpointSlices(namespace)
	curSlice, err := slices.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = slices.Create(ctx, slice, metav1.CreateOptions{})
	case err == nil:
		curSlice.Labels, curSlice.AddressType, curSlice.Endpoints, curSlice.Ports = slice.Labels, slice.AddressType, slice.Endpoints, slice.Ports
		_, err = slices.Update(ctx, curSlice, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("write endpointslice: %w", err)
	}
	return nil
}

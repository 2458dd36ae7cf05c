// Package endpoints keeps the default/kubernetes Endpoints and EndpointSlice
// pointing at the public HTTPS port (the supervisor) of every live server,
// because the apiserver itself listens on a loopback port.
//
// Each server keeps a Lease kube-system/kedge-server-<name> that carries its
// address and renews it every Interval; every server writes the endpoints
// from the leases that have not expired. A server that stops deletes its
// lease and writes the endpoints without itself; one that dies drops out
// when its lease expires.
package endpoints

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/kedge/kedge/embedded/component"
	"github.com/kedge/kedge/server/controllers/publish"
)

// Reconciler renews this server's lease and writes the kubernetes Service's
// Endpoints and EndpointSlice (with publish.WriteSlice) every Interval.
type Reconciler struct {
	Client kubernetes.Interface
	// Server is this server's name (its node name); IP and Port its public address.
	Server   string
	IP       net.IP
	Port     int32
	Interval time.Duration // default 10 s; a lease lives 3 intervals
	Log      *slog.Logger
}

var _ component.Component = (*Reconciler)(nil)

// Name implements component.Component.
func (r *Reconciler) Name() string { return "kubernetes-endpoints" }

const (
	namespace = metav1.NamespaceDefault
	name      = "kubernetes"
	portName  = "https"

	// LeaseNamespace holds the servers' leases.
	LeaseNamespace = metav1.NamespaceSystem
	// LeaseLabel marks a server lease; AddressAnnotation carries its IP.
	LeaseLabel        = "kedge.io/server"
	AddressAnnotation = "kedge.io/address"
	leasePrefix       = "kedge-server-"
)

// LeaseName is the name of the lease of the server named server.
func LeaseName(server string) string { return leasePrefix + server }

// Run is ready after the first successful write and repairs drift every
// Interval until ctx ends; then it withdraws this server (best effort,
// within 2 s). See publish.Loop.
func (r *Reconciler) Run(ctx context.Context, ready func()) error {
	loop := &publish.Loop{What: "kubernetes endpoints", Interval: r.Interval, Publish: r.publish, Withdraw: r.withdraw, Log: r.Log}
	return loop.Run(ctx, ready)
}

// publish renews this server's lease and writes the endpoints.
func (r *Reconciler) publish(ctx context.Context) error {
	if err := r.renew(ctx); err != nil {
		return err
	}
	return r.reconcile(ctx, "")
}

// withdraw deletes this server's lease and writes the endpoints without it.
func (r *Reconciler) withdraw(ctx context.Context) error {
	err := r.Client.CoordinationV1().Leases(LeaseNamespace).Delete(ctx, LeaseName(r.Server), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete server lease: %w", err)
	}
	return r.reconcile(ctx, r.Server)
}

func (r *Reconciler) renew(ctx context.Context) error {
	leases := r.Client.CoordinationV1().Leases(LeaseNamespace)
	now := metav1.NewMicroTime(time.Now())
	spec := coordinationv1.LeaseSpec{
		HolderIdentity:       ptr.To(r.Server),
		LeaseDurationSeconds: ptr.To(int32(3 * publish.Interval(r.Interval) / time.Second)),
		RenewTime:            &now,
	}
	cur, err := leases.Get(ctx, LeaseName(r.Server), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = leases.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: LeaseName(r.Server), Namespace: LeaseNamespace,
				Labels:      map[string]string{LeaseLabel: "true"},
				Annotations: map[string]string{AddressAnnotation: r.IP.String()}},
			Spec: spec,
		}, metav1.CreateOptions{})
	case err == nil:
		cur.Labels = map[string]string{LeaseLabel: "true"}
		cur.Annotations = map[string]string{AddressAnnotation: r.IP.String()}
		cur.Spec = spec
		_, err = leases.Update(ctx, cur, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("renew server lease: %w", err)
	}
	return nil
}

// LiveAddresses lists, sorted, the addresses of family's IP family (IPv4 or
// IPv6) of the servers whose leases have not expired, except the server
// named skip. Other per-server Services (the metrics API) use it too.
func LiveAddresses(ctx context.Context, client kubernetes.Interface, family net.IP, skip string) ([]string, error) {
	list, err := client.CoordinationV1().Leases(LeaseNamespace).List(ctx, metav1.ListOptions{LabelSelector: LeaseLabel + "=true"})
	if err != nil {
		return nil, fmt.Errorf("list server leases: %w", err)
	}
	now := time.Now()
	var out []string
	for _, l := range list.Items {
		if l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil || ptr.Deref(l.Spec.HolderIdentity, "") == skip {
			continue
		}
		if l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second).Before(now) {
			continue
		}
		ip := net.ParseIP(l.Annotations[AddressAnnotation])
		if ip == nil || (ip.To4() == nil) != (family.To4() == nil) {
			continue
		}
		if s := ip.String(); !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out, nil
}

func (r *Reconciler) reconcile(ctx context.Context, skip string) error {
	ips, err := LiveAddresses(ctx, r.Client, r.IP, skip)
	if err != nil {
		return err
	}
	if len(ips) == 0 {
		return nil // nothing serves; leave the last known servers
	}
	addrs := make([]corev1.EndpointAddress, 0, len(ips))
	for _, ip := range ips {
		addrs = append(addrs, corev1.EndpointAddress{IP: ip})
	}
	want := &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace,
			Labels: map[string]string{discoveryv1.LabelSkipMirror: "true"}},
		Subsets: []corev1.EndpointSubset{{
			Addresses: addrs,
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
		return fmt.Errorf("get endpoints: %w", err)
	case !equality.Semantic.DeepEqual(cur.Subsets, want.Subsets) || !equality.Semantic.DeepEqual(cur.Labels, want.Labels):
		cur.Subsets, cur.Labels = want.Subsets, want.Labels
		if _, err := eps.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update endpoints: %w", err)
		}
	}
	return publish.WriteSlice(ctx, r.Client, publish.Slice(namespace, name, ips, r.IP, portName, r.Port))
}

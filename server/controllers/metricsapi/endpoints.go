package metricsapi

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/kedge/kedge/embedded/component"
	"github.com/kedge/kedge/server/controllers/endpoints"
)

// The Service (manifests/metrics-server.yaml) that the APIService
// v1beta1.metrics.k8s.io names, and its port name.
const (
	ServiceNamespace = metav1.NamespaceSystem
	ServiceName      = "metrics-server"
	portName         = "https"
)

// ServerName is the TLS server name the aggregator dials the metrics API
// with (<service>.<namespace>.svc); the serving certificate must cover it.
const ServerName = ServiceName + "." + ServiceNamespace + ".svc"

// Endpoints keeps the EndpointSlice of the metrics-server Service pointing
// at Port of every live server (the servers' leases, see server/endpoints),
// always including this one, every Interval. The slice is owned by the
// Service, so it goes when the Service does (--disable metrics-server);
// while there is no Service there is nothing to write.
type Endpoints struct {
	Client kubernetes.Interface
	// Server is this server's name; IP and Port where it serves the API.
	Server   string
	IP       net.IP
	Port     int32
	Interval time.Duration // default 10 s
	Log      *slog.Logger
}

var _ component.Component = (*Endpoints)(nil)

// Name implements component.Component.
func (e *Endpoints) Name() string { return "metrics-endpoints" }

// Run is ready after the first write and repairs drift until ctx ends;
// then it writes the slice without this server if another one is live
// (best effort, within 2 s).
func (e *Endpoints) Run(ctx context.Context, ready func()) error {
	interval := e.Interval
	if interval <= 0 {
		interval = 10 * time.Second
	}
	for {
		if err := e.reconcile(ctx, true); err != nil {
			if ctx.Err() == nil {
				e.Log.Warn("update metrics-server endpoints", "error", err)
			}
		} else {
			ready()
		}
		select {
		case <-ctx.Done():
			stop, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if err := e.reconcile(stop, false); err != nil {
				e.Log.Debug("withdraw from metrics-server endpoints", "error", err)
			}
			cancel()
			return nil
		case <-time.After(interval):
		}
	}
}

// reconcile writes the slice with the live servers' addresses, with this
// server's if self, else without it; with no address left it writes nothing.
func (e *Endpoints) reconcile(ctx context.Context, self bool) error {
	skip := ""
	if !self {
		skip = e.Server
	}
	ips, err := endpoints.LiveAddresses(ctx, e.Client, e.IP, skip)
	if err != nil {
		return err
	}
	own := e.IP.String()
	if self && !slices.Contains(ips, own) {
		ips = append(ips, own)
		slices.Sort(ips)
	}
	if !self {
		ips = slices.DeleteFunc(ips, func(ip string) bool { return ip == own })
	}
	if len(ips) == 0 {
		return nil
	}
	svc, err := e.Client.CoreV1().Services(ServiceNamespace).Get(ctx, ServiceName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get service %s/%s: %w", ServiceNamespace, ServiceName, err)
	}
	want := desiredSlice(ips, e.IP, e.Port)
	want.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: svc.Name, UID: svc.UID}}
	return writeSlice(ctx, e.Client, want)
}

func desiredSlice(ips []string, family net.IP, port int32) *discoveryv1.EndpointSlice {
	addrType := discoveryv1.AddressTypeIPv4
	if family.To4() == nil {
		addrType = discoveryv1.AddressTypeIPv6
	}
	eps := make([]discoveryv1.Endpoint, 0, len(ips))
	for _, ip := range ips {
		eps = append(eps, discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}})
	}
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: ServiceName, Namespace: ServiceNamespace,
			Labels: map[string]string{discoveryv1.LabelServiceName: ServiceName, discoveryv1.LabelManagedBy: "kedge"}},
		AddressType: addrType,
		Endpoints:   eps,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To(portName), Port: ptr.To(port), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
}

func writeSlice(ctx context.Context, client kubernetes.Interface, want *discoveryv1.EndpointSlice) error {
	slices := client.DiscoveryV1().EndpointSlices(want.Namespace)
	cur, err := slices.Get(ctx, want.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = slices.Create(ctx, want, metav1.CreateOptions{})
	case err == nil:
		if equality.Semantic.DeepEqual(cur.Labels, want.Labels) && cur.AddressType == want.AddressType &&
			equality.Semantic.DeepEqual(cur.Endpoints, want.Endpoints) && equality.Semantic.DeepEqual(cur.Ports, want.Ports) &&
			equality.Semantic.DeepEqual(cur.OwnerReferences, want.OwnerReferences) {
			return nil
		}
		cur.Labels, cur.AddressType, cur.Endpoints, cur.Ports = want.Labels, want.AddressType, want.Endpoints, want.Ports
		cur.OwnerReferences = want.OwnerReferences
		_, err = slices.Update(ctx, cur, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("write endpointslice %s/%s: %w", want.Namespace, want.Name, err)
	}
	return nil
}

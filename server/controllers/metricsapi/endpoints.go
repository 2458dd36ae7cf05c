package metricsapi

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kedge/kedge/embedded/component"
	"github.com/kedge/kedge/server/controllers/endpoints"
	"github.com/kedge/kedge/server/controllers/publish"
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

// Run is ready after the first write and repairs drift every Interval
// until ctx ends; then it writes the slice without this server if another
// one is live (best effort, within 2 s). See publish.Loop.
func (e *Endpoints) Run(ctx context.Context, ready func()) error {
	loop := &publish.Loop{What: "metrics-server endpoints", Interval: e.Interval, Log: e.Log,
		Publish:  func(ctx context.Context) error { return e.reconcile(ctx, true) },
		Withdraw: func(ctx context.Context) error { return e.reconcile(ctx, false) }}
	return loop.Run(ctx, ready)
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
	want := publish.Slice(ServiceNamespace, ServiceName, ips, e.IP, portName, e.Port)
	want.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: svc.Name, UID: svc.UID}}
	return publish.WriteSlice(ctx, e.Client, want)
}

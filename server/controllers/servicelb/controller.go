package servicelb

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/kedge/kedge/embedded/backoff"
	"github.com/kedge/kedge/embedded/component"
	"github.com/kedge/kedge/shared/controlloop"
)

// FieldManager owns the load-balancer status the controller writes; a
// Service's managedFields tell whether kedge set its ingress.
const FieldManager = "kedge-servicelb"

// retryAfter is how soon a failed write is tried again.
const retryAfter = 5 * time.Second

// Controller keeps the ingress of LoadBalancer Services (see the package
// doc). With Disabled it only removes the ingress it set before (for users
// who bring their own load balancer) and then idles.
type Controller struct {
	Client   kubernetes.Interface
	Disabled bool
	// Reserved are the ports kedge serves on the nodes' addresses (see
	// Desired); Services asking for them get no ingress.
	Reserved map[string]string
	Log      *slog.Logger
	// Decided, if set, is called after each reconcile with the desired
	// ingress and its error (see controlloop.Loop.Decided).
	Decided func(Result, error)
}

var _ component.Component = (*Controller)(nil)

// Name implements component.Component.
func (c *Controller) Name() string { return "servicelb" }

// Run implements component.Component: ready once its caches synced (when
// disabled, after its first attempt to release); it returns when ctx ends.
func (c *Controller) Run(ctx context.Context, ready func()) error {
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.Client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	r := &reconciler{client: c.Client, disabled: c.Disabled, reserved: c.Reserved, log: c.Log,
		recorder: broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: FieldManager}),
		blocked:  map[string]string{}}
	loop := &controlloop.Loop[Result]{Retry: backoff.Backoff{Min: retryAfter}, Log: c.Log, Decided: c.Decided}
	if c.Disabled {
		// Give back every Service status kedge set: ready after the first
		// attempt, retried until one succeeds, then idle (nothing kicks).
		loop.What = "release LoadBalancer Services"
		loop.Reconcile = func(ctx context.Context) (Result, error) {
			defer ready()
			return c.releaseOnce(ctx, r)
		}
		return loop.Run(ctx, nil)
	}
	factory := informers.NewSharedInformerFactory(c.Client, 0)
	services := factory.Core().V1().Services()
	nodes := factory.Core().V1().Nodes()
	endpoints := factory.Discovery().V1().EndpointSlices()
	loop.What = "update LoadBalancer Services"
	loop.Watch = []cache.SharedIndexInformer{services.Informer(), nodes.Informer(), endpoints.Informer()}
	loop.Reconcile = func(ctx context.Context) (Result, error) {
		svcs, _ := services.Lister().List(labels.Everything())
		ns, _ := nodes.Lister().List(labels.Everything())
		eps, _ := endpoints.Lister().List(labels.Everything())
		return r.reconcile(ctx, svcs, ns, eps)
	}
	// Ready once the caches synced; a Service whose status cannot be
	// written is retried without holding up the server.
	return loop.Run(ctx, ready)
}

func (c *Controller) releaseOnce(ctx context.Context, r *reconciler) (Result, error) {
	list, err := c.Client.CoreV1().Services(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return Result{}, err
	}
	svcs := make([]*corev1.Service, len(list.Items))
	for i := range list.Items {
		svcs[i] = &list.Items[i]
	}
	return r.reconcile(ctx, svcs, nil, nil)
}

type reconciler struct {
	client   kubernetes.Interface
	disabled bool
	reserved map[string]string
	log      *slog.Logger
	recorder record.EventRecorder
	blocked  map[string]string // reason last reported per Service
}

// reconcile writes every Service's status that differs from the desired
// one; it returns the desired one and the first error.
func (r *reconciler) reconcile(ctx context.Context, svcs []*corev1.Service, nodes []*corev1.Node, eps []*discoveryv1.EndpointSlice) (Result, error) {
	want := Result{Ingress: map[string][]string{}, Blocked: map[string]string{}}
	if !r.disabled {
		want = Desired(svcs, nodes, eps, r.reserved)
	}
	var firstErr error
	for _, s := range svcs {
		k := key(s)
		ips, handled := want.Ingress[k]
		if reason, blocked := want.Blocked[k]; blocked && r.blocked[k] != reason {
			r.recorder.Event(s, corev1.EventTypeWarning, "PortInUse", reason)
			r.log.Warn("LoadBalancer Service gets no address", "service", k, "reason", reason)
		}
		var err error
		switch {
		case handled:
			have := ingressIPs(s)
			if len(have) == 0 && len(ips) == 0 {
				break
			}
			if !slices.Equal(have, ips) || !ownsStatus(s) {
				err = r.apply(ctx, s, ips)
				if err == nil {
					r.log.Info("LoadBalancer Service ingress", "service", k, "ips", ips)
				}
			}
		case ownsStatus(s) && len(ingressIPs(s)) > 0:
			// No longer ours to serve (type changed, class set, port taken,
			// or servicelb disabled): give the status back.
			err = r.release(ctx, s)
			if err == nil {
				r.log.Info("released LoadBalancer Service ingress", "service", k)
			}
		}
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("service %s: %w", k, err)
		}
	}
	// Forget Services that are gone or no longer blocked.
	r.blocked = want.Blocked
	return want, firstErr
}

func (r *reconciler) apply(ctx context.Context, s *corev1.Service, ips []string) error {
	lb := corev1ac.LoadBalancerStatus()
	for _, ip := range ips {
		lb.WithIngress(corev1ac.LoadBalancerIngress().WithIP(ip).WithIPMode(corev1.LoadBalancerIPModeVIP))
	}
	ac := corev1ac.Service(s.Name, s.Namespace).WithStatus(corev1ac.ServiceStatus().WithLoadBalancer(lb))
	_, err := r.client.CoreV1().Services(s.Namespace).ApplyStatus(ctx, ac, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	return err
}

// release applies an empty status, which drops the fields kedge owned.
func (r *reconciler) release(ctx context.Context, s *corev1.Service) error {
	ac := corev1ac.Service(s.Name, s.Namespace)
	_, err := r.client.CoreV1().Services(s.Namespace).ApplyStatus(ctx, ac, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	return err
}

func ingressIPs(s *corev1.Service) []string {
	var out []string
	for _, in := range s.Status.LoadBalancer.Ingress {
		if in.IP != "" {
			out = append(out, in.IP)
		}
	}
	return out
}

// ownsStatus reports whether kedge's field manager wrote s's status.
func ownsStatus(s *corev1.Service) bool {
	return slices.ContainsFunc(s.ManagedFields, func(m metav1.ManagedFieldsEntry) bool {
		return m.Manager == FieldManager && m.Subresource == "status"
	})
}

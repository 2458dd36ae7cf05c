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

	"github.com/kedge/kedge/embedded/component"
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
	if c.Disabled {
		return c.releaseAll(ctx, r, ready)
	}
	factory := informers.NewSharedInformerFactory(c.Client, 0)
	defer factory.Shutdown()
	services := factory.Core().V1().Services()
	nodes := factory.Core().V1().Nodes()
	endpoints := factory.Discovery().V1().EndpointSlices()
	kick := make(chan struct{}, 1)
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { poke(kick) },
		UpdateFunc: func(any, any) { poke(kick) },
		DeleteFunc: func(any) { poke(kick) },
	}
	var synced []cache.InformerSynced
	for _, inf := range []cache.SharedIndexInformer{services.Informer(), nodes.Informer(), endpoints.Informer()} {
		if _, err := inf.AddEventHandler(handler); err != nil {
			return err
		}
		synced = append(synced, inf.HasSynced)
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return nil
	}
	// Ready once the caches synced; a Service whose status cannot be
	// written is retried without holding up the server.
	ready()
	for {
		svcs, _ := services.Lister().List(labels.Everything())
		ns, _ := nodes.Lister().List(labels.Everything())
		eps, _ := endpoints.Lister().List(labels.Everything())
		var retry <-chan time.Time
		if err := r.reconcile(ctx, svcs, ns, eps); err != nil {
			c.Log.Warn("cannot update LoadBalancer Services; retrying", "error", err, "retry_in", retryAfter)
			retry = time.After(retryAfter)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-kick:
		case <-retry:
		}
	}
}

// releaseAll gives back every Service status kedge set: it is ready after
// the first attempt, retries in the background until one succeeds, and
// then idles until ctx ends.
func (c *Controller) releaseAll(ctx context.Context, r *reconciler, ready func()) error {
	for attempt := 0; ; attempt++ {
		err := c.releaseOnce(ctx, r)
		if attempt == 0 {
			ready()
		}
		if err == nil || ctx.Err() != nil {
			break
		}
		c.Log.Warn("cannot release LoadBalancer Services; retrying", "error", err, "retry_in", retryAfter)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(retryAfter):
		}
	}
	<-ctx.Done()
	return nil
}

func (c *Controller) releaseOnce(ctx context.Context, r *reconciler) error {
	list, err := c.Client.CoreV1().Services(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	svcs := make([]*corev1.Service, len(list.Items))
	for i := range list.Items {
		svcs[i] = &list.Items[i]
	}
	return r.reconcile(ctx, svcs, nil, nil)
}

func poke(kick chan struct{}) {
	select {
	case kick <- struct{}{}:
	default:
	}
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
// one and returns the first error.
func (r *reconciler) reconcile(ctx context.Context, svcs []*corev1.Service, nodes []*corev1.Node, eps []*discoveryv1.EndpointSlice) error {
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
	return firstErr
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

package clusterdns

import (
	"context"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/kedge/kedge/embedded/component"
	"github.com/kedge/kedge/embedded/coredns"
)

// Engine starts a DNS server from a Corefile; CoreDNS in this process
// (coredns.Server) is the real one.
type Engine func(corefile string) (Stopper, error)

// Stopper stops a running DNS server.
type Stopper interface{ Stop() }

// background is CoreDNS started as a component (its stop logs its own
// errors).
type background struct{ *component.Background }

func (b background) Stop() { _ = b.Background.Stop() }

// Server runs the node's DNS as a component: it watches the kube-dns
// Service and serves Corefile while that Service is kedge's (Managed), and
// not otherwise.
type Server struct {
	// Client reads the kube-dns Service; the agent's goes through the
	// local caching endpoint, so the last state known holds offline.
	Client kubernetes.Interface
	// Corefile is what CoreDNS runs (see Corefile).
	Corefile string
	// Engine defaults to CoreDNS in this process.
	Engine Engine
	// Decided, if set, is called after each look at the kube-dns Service
	// (nil if there is none) with whether DNS is serving then.
	Decided func(svc *corev1.Service, serving bool)
	Log     *slog.Logger
}

var _ component.Component = (*Server)(nil)

// Name implements component.Component.
func (s *Server) Name() string { return "cluster-dns" }

// Managed reports whether svc is the kube-dns Service kedge's agents serve.
func Managed(svc *corev1.Service) bool {
	return svc != nil && svc.Namespace == Namespace && svc.Name == ServiceName && svc.Labels[ManagedLabel] == "true"
}

// Run implements component.Component. It is ready at once: the Service may
// be deployed after the node starts, and the node does not wait for it.
// DNS starts when the Service is seen (a failed start, such as the port
// in use, is logged and retried with backoff up to 30 s) and stops when
// it goes or loses ManagedLabel, and when ctx ends.
func (s *Server) Run(ctx context.Context, ready func()) error {
	engine := s.Engine
	if engine == nil {
		engine = func(corefile string) (Stopper, error) {
			dns, err := component.Start(ctx, &coredns.Server{Corefile: corefile})
			if err != nil {
				return nil, err
			}
			return background{dns}, nil
		}
	}
	factory := informers.NewSharedInformerFactoryWithOptions(s.Client, 0, informers.WithNamespace(Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", ServiceName).String()
		}))
	services := factory.Core().V1().Services()
	changed := make(chan struct{}, 1)
	poke := func(any) {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	if _, err := services.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: poke, UpdateFunc: func(_, n any) { poke(n) }, DeleteFunc: poke,
	}); err != nil {
		return err
	}
	lister := services.Lister()
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	ready()

	var running Stopper
	defer func() {
		if running != nil {
			running.Stop()
			s.Log.Info("cluster DNS stopped")
		}
	}()
	backoff := time.Second
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-retry:
			retry = nil
		}
		svc, err := lister.Services(Namespace).Get(ServiceName)
		if err != nil {
			svc = nil
		}
		want := Managed(svc)
		switch {
		case want && running == nil && retry == nil:
			running, err = engine(s.Corefile)
			if err != nil {
				running = nil
				s.Log.Error("cannot start cluster DNS; retrying", "error", err, "retry_in", backoff)
				retry = time.After(backoff)
				backoff = min(2*backoff, 30*time.Second)
				continue
			}
			backoff = time.Second
			s.Log.Info("cluster DNS serving", "port", Port)
		case !want && running != nil:
			running.Stop()
			running = nil
			s.Log.Info("cluster DNS stopped: the kube-dns Service is gone or not kedge's", "label", ManagedLabel)
		}
		if s.Decided != nil {
			s.Decided(svc, running != nil)
		}
	}
}

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

	"github.com/kedge/kedge/embedded/backoff"
	"github.com/kedge/kedge/embedded/component"
	"github.com/kedge/kedge/embedded/coredns"
	"github.com/kedge/kedge/shared/controlloop"
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
	// (see controlloop.Loop.Decided).
	Decided func(Decision, error)
	Log     *slog.Logger
}

// Decision is what one look at the kube-dns Service decided.
type Decision struct {
	Service *corev1.Service // nil if there is none
	Serving bool
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
	services := informers.NewSharedInformerFactoryWithOptions(s.Client, 0, informers.WithNamespace(Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", ServiceName).String()
		})).Core().V1().Services()
	ready()

	var running Stopper
	defer func() {
		if running != nil {
			running.Stop()
			s.Log.Info("cluster DNS stopped")
		}
	}()
	loop := &controlloop.Loop[Decision]{
		Watch: []cache.SharedIndexInformer{services.Informer()},
		Reconcile: func(context.Context) (Decision, error) {
			svc, err := services.Lister().Services(Namespace).Get(ServiceName)
			if err != nil {
				svc = nil
			}
			want := Managed(svc)
			switch {
			case want && running == nil:
				if running, err = engine(s.Corefile); err != nil {
					running = nil
					return Decision{Service: svc}, err
				}
				s.Log.Info("cluster DNS serving", "port", Port)
			case !want && running != nil:
				running.Stop()
				running = nil
				s.Log.Info("cluster DNS stopped: the kube-dns Service is gone or not kedge's", "label", ManagedLabel)
			}
			return Decision{Service: svc, Serving: running != nil}, nil
		},
		// A failed start (such as the port in use) is not tried again sooner.
		Retry:             backoff.Backoff{Min: time.Second, Max: 30 * time.Second},
		HoldWhileRetrying: true,
		What:              "start cluster DNS",
		FailLevel:         slog.LevelError,
		Log:               s.Log,
		Decided:           s.Decided,
	}
	return loop.Run(ctx, nil)
}

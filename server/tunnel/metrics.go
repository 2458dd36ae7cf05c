package tunnel

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// The tunnel's metrics, in the process's Kubernetes metrics registry, so
// that the in-process kube-apiserver serves them on /metrics
// (`kubectl get --raw /metrics`) with its own.
var (
	sessionsStarted = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: "kedge", Subsystem: "tunnel", Name: "sessions_started_total",
		Help:           "Tunnel sessions agents opened to this server, by node.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"node"})
	sessionsEnded = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: "kedge", Subsystem: "tunnel", Name: "sessions_ended_total",
		Help:           "Tunnel sessions to this server that ended (the link died, the agent went, or a newer session replaced it), by node.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"node"})
	registerMetrics sync.Once
)

func register() {
	registerMetrics.Do(func() { legacyregistry.MustRegister(sessionsStarted, sessionsEnded) })
}

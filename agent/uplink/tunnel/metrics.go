package tunnel

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// sessionsLost counts the agent's established tunnel sessions that ended
// while it still wanted them (the link died or the server went). It is in
// the process's Kubernetes metrics registry, which the in-process
// kube-proxy serves on its metrics port (127.0.0.1:10249/metrics).
var (
	sessionsLost = metrics.NewCounter(&metrics.CounterOpts{
		Namespace: "kedge", Subsystem: "agent_tunnel", Name: "sessions_lost_total",
		Help:           "Established tunnel sessions to servers that ended while the agent still wanted them.",
		StabilityLevel: metrics.ALPHA,
	})
	registerMetrics sync.Once
)

func register() { registerMetrics.Do(func() { legacyregistry.MustRegister(sessionsLost) }) }

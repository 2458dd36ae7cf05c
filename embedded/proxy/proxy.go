// Package proxy runs the upstream kube-proxy in-process.
package proxy

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/kubernetes/cmd/kube-proxy/app"

	"github.com/kedge/kedge/embedded/component"
)

// Proxy is kube-proxy configured by flags only (a --config file would be
// watched and end kube-proxy when rewritten).
type Proxy struct {
	Args []string
	// HealthzURL is polled for readiness.
	HealthzURL string
}

var _ component.Component = (*Proxy)(nil)

// Name implements component.Component.
func (p *Proxy) Name() string { return "kube-proxy" }

// Run starts kube-proxy and is ready once its healthz reports a first sync.
// Upstream kube-proxy never returns on cancel, so it runs detached and ends
// with the process; its rules stay in place, so Services keep working
// across an agent restart.
func (p *Proxy) Run(ctx context.Context, ready func()) error {
	o := app.NewOptions()
	fs := pflag.NewFlagSet("kube-proxy", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse(p.Args); err != nil {
		return fmt.Errorf("kube-proxy arguments: %w", err)
	}
	if err := o.Complete(fs); err != nil {
		return fmt.Errorf("kube-proxy options: %w", err)
	}
	if err := o.Validate(); err != nil {
		return fmt.Errorf("kube-proxy options: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- o.Run(context.Background()) }()
	go component.PollReady(ctx, 250*time.Millisecond, component.HTTPCheck(p.HealthzURL), ready)
	select {
	case err := <-done:
		return fmt.Errorf("kube-proxy stopped: %w", err)
	case <-ctx.Done():
		return nil
	}
}

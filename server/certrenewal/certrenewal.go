// Package certrenewal renews a running server's leaf certificates when they
// are due (certlife: a third of their year left), in place, so that nothing
// restarts: the apiserver reloads its serving certificate, client CAs and
// proxy client certificate from the files, client-go and etcd read client
// certificates again, and kedge's own listeners use shared/keypair. Only
// the admin kubeconfig embeds its certificate; it is written again.
package certrenewal

import (
	"context"
	"log/slog"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/kedge/kedge/embedded/component"
	"github.com/kedge/kedge/server/pki"
	"github.com/kedge/kedge/shared/certlife"
)

// Renewer is the server's certificate renewal as a component.
type Renewer struct {
	// Request is what the server ensured at start.
	Request pki.Request
	// AtStart is what that renewed, reported as Events once the API answers.
	AtStart []pki.Issued
	// Written writes the files that embed certificates (the admin
	// kubeconfig) again; it is called on every check, so it must leave
	// unchanged files alone.
	Written func() error
	// Client and Node say where the Events go: the Node named like the
	// server, its own agent's (none without an agent).
	Client kubernetes.Interface
	Node   string
	Log    *slog.Logger
}

var _ component.Component = (*Renewer)(nil)

// Name implements component.Component.
func (r *Renewer) Name() string { return "certificate-renewal" }

// Run implements component.Component: ready at once, it checks every
// certlife.CheckEvery until ctx ends.
func (r *Renewer) Run(ctx context.Context, ready func()) error {
	ready()
	lifetime, err := certlife.Lifetime()
	if err != nil {
		return err
	}
	r.report(ctx, r.AtStart)
	tick := time.NewTicker(certlife.CheckEvery(lifetime))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		r.check(ctx)
	}
}

// check renews what is due and writes the derived files.
func (r *Renewer) check(ctx context.Context) {
	req := r.Request
	req.Now = time.Time{}
	files, err := pki.Ensure(req, r.Log)
	if err != nil {
		r.Log.Error("cannot renew the server's certificates; retrying", "error", err)
		return
	}
	if err := r.Written(); err != nil {
		r.Log.Error("cannot write the admin kubeconfig with the renewed certificate", "error", err)
	}
	r.report(ctx, files.Issued)
}

// report records an Event for each renewed certificate (pki.Ensure logged
// a line for each).
func (r *Renewer) report(ctx context.Context, issued []pki.Issued) {
	for _, is := range issued {
		if is.Replaced == nil {
			continue
		}
		if err := certlife.RecordWarning(ctx, r.Client, r.Node, is.CertFile, is.Replaced.NotAfter); err != nil {
			r.Log.Debug("cannot record the certificate Event", "error", err)
		}
	}
}

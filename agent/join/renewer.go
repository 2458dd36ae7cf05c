package join

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/kedge/kedge/embedded/backoff"
	"github.com/kedge/kedge/embedded/component"
	"github.com/kedge/kedge/shared/certlife"
	"github.com/kedge/kedge/shared/token"
)

// Renewer keeps the node's certificates renewed while the agent runs: when
// one is due (certlife.Due), it logs a line per certificate, records a
// CertificateExpirationWarning Event on the Node, and asks the server for
// new certificates for the same keys with the node's current identity (its
// token only if the server refuses that identity). The kubelet, kube-proxy
// and kedge's own clients read the files again, so nothing restarts.
type Renewer struct {
	// Server is the URL to renew with (the agent's --server).
	Server string
	// Dir is the credentials directory.
	Dir  string
	Node Node
	// RequestFile, when it exists, asks for a renewal now (kedge
	// certificate rotate writes it); it is removed after the renewal.
	RequestFile string
	// Token joins again when the current certificate is refused (expired).
	Token token.Token
	// Client records the Event; nil records none.
	Client kubernetes.Interface
	Log    *slog.Logger
}

var _ component.Component = (*Renewer)(nil)

// Name implements component.Component.
func (r *Renewer) Name() string { return "certificate-renewal" }

// Run implements component.Component. It is ready at once and checks now,
// then every certlife.CheckEvery.
func (r *Renewer) Run(ctx context.Context, ready func()) error {
	ready()
	retry := backoff.Backoff{Min: 5 * time.Second, Max: time.Minute, Jitter: 0.3}
	for {
		wait, err := r.check(ctx)
		if err != nil {
			wait = min(wait, retry.Next())
			r.Log.Error("cannot renew the node's certificates; retrying", "server", r.Server, "error", err, "retry_in", wait.Round(time.Second))
		} else {
			retry.Reset()
		}
		if !backoff.Sleep(ctx, wait) {
			return nil
		}
	}
}

// check renews the certificates if one is due and returns how long to wait
// before the next check.
func (r *Renewer) check(ctx context.Context) (time.Duration, error) {
	now := time.Now()
	certs, err := NodeCertificates(r.Dir, now)
	if err != nil {
		return time.Minute, err
	}
	wait := time.Minute
	due := false
	for _, c := range certs {
		wait = min(wait, certlife.CheckEvery(c.NotAfter.Sub(c.NotBefore)))
		if !c.Due {
			continue
		}
		due = true
		r.Log.Warn("node certificate is due for renewal", "file", c.File,
			"expires", c.NotAfter.UTC().Format(time.RFC3339), "left", certlife.Left(c.NotAfter, now))
		if r.Client != nil {
			if err := certlife.RecordWarning(ctx, r.Client, r.Node.Name, c.File, c.NotAfter); err != nil {
				r.Log.Debug("cannot record the certificate Event", "error", err)
			}
		}
	}
	if _, err := os.Stat(r.RequestFile); err == nil && r.RequestFile != "" {
		r.Log.Info("renewal of the node's certificates requested", "file", r.RequestFile)
		due = true
	}
	if !due {
		return wait, nil
	}
	renewed, err := Renew(ctx, r.Server, r.Dir, r.Node)
	if errors.Is(err, ErrIdentityRefused) && r.Token.Secret != "" {
		r.Log.Warn("the server refused the node's certificate; joining again with the token", "error", err)
		renewed, err = r.rejoin(ctx)
	}
	if err != nil {
		return wait, err
	}
	if err := renewed.Save(r.Dir); err != nil {
		return wait, err
	}
	after, err := NodeCertificates(r.Dir, time.Now())
	if err != nil {
		return wait, err
	}
	r.Log.Info("renewed the node's certificates", "expires", after[0].NotAfter.UTC().Format(time.RFC3339))
	if r.RequestFile != "" {
		if err := os.Remove(r.RequestFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			return wait, err
		}
	}
	return min(wait, certlife.CheckEvery(after[0].NotAfter.Sub(after[0].NotBefore))), nil
}

func (r *Renewer) rejoin(ctx context.Context) (*Certs, error) {
	ca, err := FetchCA(ctx, r.Server, r.Token)
	if err != nil {
		return nil, err
	}
	return RequestCerts(ctx, r.Server, ca, r.Token, r.Node)
}

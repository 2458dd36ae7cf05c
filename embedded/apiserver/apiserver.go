// Package apiserver runs the upstream kube-apiserver in-process.
package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	encryptionconfigcontroller "k8s.io/apiserver/pkg/server/options/encryptionconfig/controller"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
	"k8s.io/kubernetes/cmd/kube-apiserver/app/options"

	"github.com/kedge/kedge/embedded/component"
	"github.com/kedge/kedge/embedded/kubeflags"
)

// APIServer is kube-apiserver with the given command-line arguments.
type APIServer struct {
	Args []string
	// Ready is polled until it succeeds; it should call /readyz.
	Ready func(context.Context) error

	handler atomic.Pointer[http.Handler]
}

// Handler returns the apiserver's full handler chain (authentication,
// authorization, admission, all APIs) once Run has built it, or nil before.
// Serving it on another TLS listener is equivalent to calling the
// apiserver's own port, as long as client certificates are requested.
func (a *APIServer) Handler() http.Handler {
	if h := a.handler.Load(); h != nil {
		return *h
	}
	return nil
}

var _ component.Component = (*APIServer)(nil)

// EncryptionConfigPoll is how often the apiserver reads its encryption
// provider config (with --encryption-provider-config-automatic-reload),
// instead of upstream's minute: a key rotation waits for two reloads, and
// the read is one small file.
const EncryptionConfigPoll = 5 * time.Second

// setPoll sets upstream's process-wide poll period once, before the first
// apiserver in this process starts its reload controller.
var setPoll sync.Once

// Name implements component.Component.
func (a *APIServer) Name() string { return "kube-apiserver" }

// Run serves until ctx is done, then shuts the apiserver down gracefully.
func (a *APIServer) Run(ctx context.Context, ready func()) error {
	setPoll.Do(func() { encryptionconfigcontroller.EncryptionConfigFileChangePollDuration = EncryptionConfigPoll })
	s := options.NewServerRunOptions()
	if err := kubeflags.Parse("kube-apiserver", s.Flags(), a.Args); err != nil {
		return err
	}
	if err := s.GenericServerRunOptions.ComponentGlobalsRegistry.Set(); err != nil {
		return fmt.Errorf("kube-apiserver feature gates: %w", err)
	}
	// The apiserver's loopback clients would log their own deprecation warnings.
	rest.SetDefaultWarningHandler(rest.NoWarnings{})
	completed, err := s.Complete(ctx)
	if err != nil {
		return fmt.Errorf("complete kube-apiserver options: %w", err)
	}
	if errs := completed.Validate(); len(errs) != 0 {
		return fmt.Errorf("kube-apiserver options: %w", utilerrors.NewAggregate(errs))
	}
	// The informer name is process-global; release it so that a later run in
	// this process can take it again.
	name, err := cache.NewInformerName("kube-apiserver")
	if err != nil {
		return fmt.Errorf("kube-apiserver: %w", err)
	}
	defer name.Release()
	completed.InformerName = name
	pollCtx, stopPoll := context.WithCancel(ctx)
	defer stopPoll()
	go component.PollReady(pollCtx, 200*time.Millisecond, a.Ready, ready)
	if err := a.serve(ctx, completed); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// serve is app.Run, keeping the server chain's handler for Handler.
func (a *APIServer) serve(ctx context.Context, opts options.CompletedOptions) error {
	cfg, err := app.NewConfig(opts)
	if err != nil {
		return err
	}
	completed, err := cfg.Complete()
	if err != nil {
		return err
	}
	chain, err := app.CreateServerChain(completed)
	if err != nil {
		return err
	}
	var h http.Handler = chain.GenericAPIServer.Handler
	a.handler.Store(&h)
	prepared, err := chain.PrepareRun()
	if err != nil {
		return err
	}
	return prepared.Run(ctx)
}

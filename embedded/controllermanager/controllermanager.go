// Package controllermanager runs the upstream kube-controller-manager in-process.
package controllermanager

import (
	"context"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/component-base/configz"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app/options"

	"github.com/kedge/kedge/embedded/component"
	"github.com/kedge/kedge/embedded/kubeflags"
)

// ControllerManager is kube-controller-manager with the given arguments.
type ControllerManager struct {
	Args []string
}

var _ component.Component = (*ControllerManager)(nil)

// Name implements component.Component.
func (c *ControllerManager) Name() string { return "kube-controller-manager" }

// Run runs the controllers until ctx is done. It is ready once its
// credentials authenticate against the apiserver.
//
// With leader election on, upstream exits the process when it stops leading,
// so the controllers then run detached: Run returns on cancel and the
// controllers end with the process.
func (c *ControllerManager) Run(ctx context.Context, ready func()) error {
	s, err := options.NewKubeControllerManagerOptions()
	if err != nil {
		return fmt.Errorf("kube-controller-manager options: %w", err)
	}
	all, disabled, aliases := app.KnownControllers(), app.ControllersDisabledByDefault(), app.ControllerAliases()
	sets := s.Flags(all, disabled, aliases)
	s.ParsedFlags = &sets
	if err := kubeflags.Parse("kube-controller-manager", sets, c.Args); err != nil {
		return err
	}
	if err := s.ComponentGlobalsRegistry.Set(); err != nil {
		return fmt.Errorf("kube-controller-manager feature gates: %w", err)
	}
	runCtx := ctx
	if s.Generic.LeaderElection.LeaderElect {
		runCtx = context.WithoutCancel(ctx)
	}
	cfg, err := s.Config(runCtx, all, disabled, aliases)
	if err != nil {
		return fmt.Errorf("kube-controller-manager config: %w", err)
	}
	// configz is process-global; a previous run in this process registered it.
	configz.Delete(app.ConfigzName)
	completed := cfg.Complete()
	go component.PollReady(ctx, 200*time.Millisecond, func(ctx context.Context) error {
		_, err := completed.Client.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		return err
	}, ready)
	done := make(chan error, 1)
	go func() { done <- app.Run(runCtx, completed) }()
	select {
	case err := <-done:
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("kube-controller-manager stopped: %w", err)
	case <-ctx.Done():
		if runCtx != ctx {
			return nil
		}
		<-done
		return nil
	}
}

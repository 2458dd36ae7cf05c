// Package scheduler runs the upstream kube-scheduler in-process.
package scheduler

import (
	"context"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"
	"k8s.io/kubernetes/cmd/kube-scheduler/app/options"

	"github.com/kedge/kedge/embedded/component"
	"github.com/kedge/kedge/embedded/kubeflags"
)

// Scheduler is kube-scheduler with the given command-line arguments.
type Scheduler struct {
	Args []string
}

var _ component.Component = (*Scheduler)(nil)

// Name implements component.Component.
func (s *Scheduler) Name() string { return "kube-scheduler" }

// Run schedules until ctx is done. It is ready once its credentials
// authenticate against the apiserver.
//
// With leader election on, upstream exits the process when its context is
// cancelled, so the scheduler then runs detached: Run returns on cancel and
// the scheduler ends with the process.
func (s *Scheduler) Run(ctx context.Context, ready func()) error {
	opts := options.NewOptions()
	if err := kubeflags.Parse("kube-scheduler", *opts.Flags, s.Args); err != nil {
		return err
	}
	if err := opts.ComponentGlobalsRegistry.Set(); err != nil {
		return fmt.Errorf("kube-scheduler feature gates: %w", err)
	}
	runCtx := ctx
	if opts.LeaderElection.LeaderElect {
		runCtx = context.WithoutCancel(ctx)
	}
	if !opts.LeaderElection.LeaderElect {
		// Process-global; released on return so a later run can take it.
		// (A detached scheduler keeps it for the life of the process.)
		name, err := cache.NewInformerName("kube-scheduler")
		if err != nil {
			return fmt.Errorf("kube-scheduler: %w", err)
		}
		defer name.Release()
		opts.InformerName = name
	}
	cc, sched, err := app.Setup(runCtx, opts)
	if err != nil {
		return fmt.Errorf("set up kube-scheduler: %w", err)
	}
	go component.PollReady(ctx, 200*time.Millisecond, func(ctx context.Context) error {
		return authenticates(ctx, cc.Client)
	}, ready)
	done := make(chan error, 1)
	go func() { done <- app.Run(runCtx, cc, sched) }()
	select {
	case err := <-done:
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("kube-scheduler stopped: %w", err)
	case <-ctx.Done():
		if runCtx != ctx {
			return nil
		}
		<-done
		return nil
	}
}

// authenticates proves the client reaches the apiserver and its credentials are accepted.
func authenticates(ctx context.Context, c kubernetes.Interface) error {
	_, err := c.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	return err
}

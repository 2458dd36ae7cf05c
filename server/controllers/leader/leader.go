// Package leader runs components on one server at a time: the server that
// holds a coordination Lease runs them, the others wait to take over.
//
// kedge needs it because the upstream scheduler and controller-manager end
// the process when they lose their own leases, and the in-process
// controller-manager cannot be started twice in one process. So their own
// leader election is off, and kedge elects the one server that runs both.
package leader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/kedge/kedge/embedded/component"
)

// Defaults for the lease timing (those of the upstream components).
const (
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second

	// releaseTimeout bounds giving the lease up on stop.
	releaseTimeout = 3 * time.Second
)

// Elected runs Components while this server holds the Lease
// Namespace/Lease. It leads at most once per process: it is ready once its
// components are, or once it has seen another server lead; while leading it runs the components with a
// component.Runner; when it loses the lease or a component fails it returns
// an error (so the process exits and is restarted, as upstream does); on
// cancel it stops the components first and then releases the lease, so that
// another server takes over at once instead of after the lease expires.
type Elected struct {
	Client     kubernetes.Interface
	Namespace  string
	Lease      string
	Identity   string
	Components []component.Component
	// Lease timing; zero means the defaults.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	Log                                       *slog.Logger
}

var _ component.Component = (*Elected)(nil)

// Name implements component.Component.
func (e *Elected) Name() string { return "leader-election" }

// Run implements component.Component.
func (e *Elected) Run(ctx context.Context, ready func()) error {
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: e.Namespace, Name: e.Lease},
		Client:     e.Client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: e.Identity},
	}
	recording := &writeRecorder{Interface: lock}
	// led receives the components' result, once, if this server leads.
	led := make(chan error, 1)
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:          recording,
		Name:          e.Lease,
		LeaseDuration: orDefault(e.LeaseDuration, DefaultLeaseDuration),
		RenewDeadline: orDefault(e.RenewDeadline, DefaultRenewDeadline),
		RetryPeriod:   orDefault(e.RetryPeriod, DefaultRetryPeriod),
		// Released below, after the components have stopped.
		ReleaseOnCancel: false,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(lctx context.Context) {
				e.Log.Info("leading: starting the components", "lease", e.Namespace+"/"+e.Lease, "components", e.names())
				// Stops are bounded so that a server whose datastore lost its
				// quorum still stops within the process's shutdown grace.
				r := &component.Runner{Log: e.Log, ReadyTimeout: 2 * time.Minute, StopTimeout: 4 * time.Second, OnReady: ready}
				led <- r.Run(lctx, e.Components...)
			},
			OnStoppedLeading: func() {},
			OnNewLeader: func(id string) {
				if id != "" && id != e.Identity {
					e.Log.Info("components run on another server", "lease", e.Namespace+"/"+e.Lease, "leader", id)
					ready()
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	electCtx, stopElecting := context.WithCancel(ctx)
	defer stopElecting()
	electing := make(chan struct{})
	go func() {
		defer close(electing)
		le.Run(electCtx)
	}()

	var result error
	select {
	case <-electing:
		// The election ends by itself only when it lost the lease, and then
		// it has started the components and cancelled them.
		if ctx.Err() == nil {
			err := <-led
			return fmt.Errorf("lost the %s/%s lease; exiting so that this server restarts and waits to lead again (components: %v)", e.Namespace, e.Lease, err)
		}
	case result = <-led:
		// The components ended while leading and not cancelled: a failure.
		stopElecting()
		<-electing
		if result == nil {
			result = errors.New("the components stopped while leading")
		}
		e.release(lock)
		return result
	case <-ctx.Done():
		<-electing
	}
	// Cancelled. If this server took the lease, the election started the
	// components, and they are stopping now.
	if recording.wrote.Load() {
		result = <-led
		e.release(lock)
	}
	return result
}

// release gives the lease up if this server holds it, retrying on conflicts
// (an update in flight when the election was cancelled bumps the version).
func (e *Elected) release(lock *resourcelock.LeaseLock) {
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	for {
		err := e.tryRelease(ctx, lock)
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			e.Log.Warn("could not release the lease; another server takes over when it expires", "lease", e.Namespace+"/"+e.Lease, "error", err)
			return
		}
		if !apierrors.IsConflict(err) {
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
}

func (e *Elected) tryRelease(ctx context.Context, lock *resourcelock.LeaseLock) error {
	rec, _, err := lock.Get(ctx)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if rec.HolderIdentity != e.Identity {
		return nil
	}
	now := metav1.Now()
	if err := lock.Update(ctx, resourcelock.LeaderElectionRecord{
		LeaderTransitions: rec.LeaderTransitions, LeaseDurationSeconds: 1, RenewTime: now, AcquireTime: now,
	}); err != nil {
		return err
	}
	e.Log.Info("released the lease", "lease", e.Namespace+"/"+e.Lease)
	return nil
}

// writeRecorder records whether the election ever wrote the lock: a
// successful write is what makes the election start the components.
type writeRecorder struct {
	resourcelock.Interface
	wrote atomic.Bool
}

func (w *writeRecorder) Create(ctx context.Context, rec resourcelock.LeaderElectionRecord) error {
	err := w.Interface.Create(ctx, rec)
	if err == nil {
		w.wrote.Store(true)
	}
	return err
}

func (w *writeRecorder) Update(ctx context.Context, rec resourcelock.LeaderElectionRecord) error {
	err := w.Interface.Update(ctx, rec)
	if err == nil {
		w.wrote.Store(true)
	}
	return err
}

func (e *Elected) names() []string {
	var n []string
	for _, c := range e.Components {
		n = append(n, c.Name())
	}
	return n
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Package component defines the lifetime contract shared by every long-running
// part of kedge (datastore, apiserver, kubelet, ...) and the Runner that
// starts them in dependency order and stops them in reverse.
package component

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Component is one long-running part of kedge.
//
// Run blocks until ctx is cancelled (then it returns nil after releasing what
// it holds) or the component fails (then it returns an error). It calls ready
// when a real check shows it can serve; calls after the first are ignored.
type Component interface {
	Name() string
	Run(ctx context.Context, ready func()) error
}

// Runner starts components in order, each only after the previous one is
// ready, and stops them in reverse order.
type Runner struct {
	// Log receives start, ready and stop events.
	Log *slog.Logger
	// ReadyTimeout bounds how long one component may take to become ready
	// (default 2 minutes).
	ReadyTimeout time.Duration
	// StopTimeout bounds how long the runner waits for one component to
	// return after its context is cancelled (default 10 s); a component
	// that overstays is abandoned and reported.
	StopTimeout time.Duration
	// StopBudget, if set, bounds the whole stop: once it is spent, the
	// components not yet stopped are cancelled and abandoned at once, so
	// that the process can end in time (for example a server whose etcd
	// lost quorum, where stops hang).
	StopBudget time.Duration
	// OnReady, if set, is called once after every component is ready.
	OnReady func()
}

type running struct {
	c      Component
	cancel context.CancelFunc
	ready  chan struct{}
	exited chan struct{}
	err    error
}

func (s *running) failure() error {
	if s.err != nil {
		return fmt.Errorf("%s: %w", s.c.Name(), s.err)
	}
	return fmt.Errorf("%s: stopped unexpectedly", s.c.Name())
}

// Run starts components in order and blocks until ctx is cancelled or one of
// them fails. It then stops the started components in reverse order and
// returns the first failure, or nil after a clean cancel.
func (r *Runner) Run(ctx context.Context, components ...Component) error {
	log := r.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	exited := make(chan *running, len(components))
	var started []*running
	runErr := func() error {
		for _, c := range components {
			s := start(ctx, c, exited)
			started = append(started, s)
			log.Debug("starting", "component", c.Name())
			timer := time.NewTimer(orDefault(r.ReadyTimeout, 2*time.Minute))
			select {
			case <-s.ready:
				timer.Stop()
				log.Debug("ready", "component", c.Name())
			case dead := <-exited:
				timer.Stop()
				return dead.failure()
			case <-timer.C:
				return fmt.Errorf("%s: not ready after %s", c.Name(), orDefault(r.ReadyTimeout, 2*time.Minute))
			case <-ctx.Done():
				timer.Stop()
				return nil
			}
		}
		if r.OnReady != nil {
			r.OnReady()
		}
		select {
		case dead := <-exited:
			return dead.failure()
		case <-ctx.Done():
			return nil
		}
	}()
	stopErr := r.stopAll(log, started)
	if runErr != nil {
		return runErr
	}
	return stopErr
}

func start(ctx context.Context, c Component, exited chan<- *running) *running {
	// Components are cancelled one by one by stopAll, never all at once by
	// the parent, so that stop order is the reverse of start order.
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &running{c: c, cancel: cancel, ready: make(chan struct{}), exited: make(chan struct{})}
	var once sync.Once
	go func() {
		s.err = c.Run(cctx, func() { once.Do(func() { close(s.ready) }) })
		close(s.exited)
		exited <- s
	}()
	return s
}

func (r *Runner) stopAll(log *slog.Logger, started []*running) error {
	stopTimeout := orDefault(r.StopTimeout, 10*time.Second)
	var deadline time.Time
	if r.StopBudget > 0 {
		deadline = time.Now().Add(r.StopBudget)
	}
	var errs []error
	for i := len(started) - 1; i >= 0; i-- {
		s := started[i]
		s.cancel()
		wait := stopTimeout
		if !deadline.IsZero() {
			wait = min(wait, time.Until(deadline))
			if wait <= 0 {
				log.Warn("stop budget spent; abandoning component", "component", s.c.Name(), "budget", r.StopBudget)
				continue
			}
		}
		timer := time.NewTimer(wait)
		select {
		case <-s.exited:
			if s.err != nil && !errors.Is(s.err, context.Canceled) {
				errs = append(errs, fmt.Errorf("stop %s: %w", s.c.Name(), s.err))
			}
			log.Debug("stopped", "component", s.c.Name())
		case <-timer.C:
			log.Warn("component did not stop in time; abandoning it", "component", s.c.Name(), "timeout", wait)
		}
		timer.Stop()
	}
	return errors.Join(errs...)
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

package snapshot

import (
	"context"
	"log/slog"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/kedge/kedge/embedded/component"
)

// ScheduledName prefixes the snapshots the server takes on its schedule;
// only these are pruned to the retention.
const ScheduledName = "scheduled"

// Clock is the time the Scheduler sees; tests replace it.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Scheduler is the server component that takes a snapshot named
// ScheduledName at each time of Schedule and then deletes the oldest
// scheduled snapshots in Request.Dir beyond Retention. Snapshots of other
// names (kedge snapshot save's) are never deleted. A snapshot that fails
// is logged and leaves the earlier ones in place; the next time is tried
// as usual. Run is ready at once.
type Scheduler struct {
	Schedule  cron.Schedule
	Retention int
	// Request is the snapshot to take; Name and Now are set at each time.
	Request Request
	// Clock defaults to the real time.
	Clock Clock
	Log   *slog.Logger
}

var _ component.Component = (*Scheduler)(nil)

// Name implements component.Component.
func (s *Scheduler) Name() string { return "scheduled-snapshots" }

// Run implements component.Component: it waits for each scheduled time
// until ctx ends (a snapshot being written then is abandoned, its
// temporary file removed).
func (s *Scheduler) Run(ctx context.Context, ready func()) error {
	clock := s.Clock
	if clock == nil {
		clock = realClock{}
	}
	ready()
	for {
		now := clock.Now()
		next := s.Schedule.Next(now)
		select {
		case <-ctx.Done():
			return nil
		case <-clock.After(next.Sub(now)):
		}
		s.take(ctx, clock.Now())
	}
}

// take saves one scheduled snapshot and prunes the older ones.
func (s *Scheduler) take(ctx context.Context, now time.Time) {
	r := s.Request
	r.Name, r.Now = ScheduledName, now
	start := time.Now()
	path, err := Save(ctx, r)
	if err != nil {
		if ctx.Err() == nil {
			s.Log.Error("scheduled snapshot failed; the earlier ones are kept", "error", err)
		}
		return
	}
	s.Log.Info("saved scheduled snapshot", "file", path, "seconds", time.Since(start).Seconds())
	removed, err := Prune(r.Dir, ScheduledName, s.Retention)
	for _, name := range removed {
		s.Log.Info("pruned scheduled snapshot", "name", name, "retention", s.Retention)
	}
	if err != nil {
		s.Log.Error("prune scheduled snapshots", "error", err)
	}
}

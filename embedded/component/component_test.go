package component

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// fake is a Component driven by the test: it records start and stop order,
// becomes ready unless told not to, and can fail on demand.
type fake struct {
	name     string
	log      *eventLog
	notReady bool
	failNow  chan error
	stopErr  error
	hang     bool
}

type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (l *eventLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, s)
}

func (l *eventLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.events, ",")
}

func (f *fake) Name() string { return f.name }

func (f *fake) Run(ctx context.Context, ready func()) error {
	f.log.add("start " + f.name)
	if !f.notReady {
		ready()
		ready() // a second call must be harmless
	}
	select {
	case err := <-f.failNow:
		f.log.add("fail " + f.name)
		return err
	case <-ctx.Done():
		if f.hang {
			select {}
		}
		f.log.add("stop " + f.name)
		return f.stopErr
	}
}

func newFakes(log *eventLog, names ...string) []*fake {
	var out []*fake
	for _, n := range names {
		out = append(out, &fake{name: n, log: log, failNow: make(chan error, 1)})
	}
	return out
}

func asComponents(fs []*fake) []Component {
	var out []Component
	for _, f := range fs {
		out = append(out, f)
	}
	return out
}

func TestRunnerStartsInOrderAndStopsInReverse(t *testing.T) {
	log := &eventLog{}
	fakes := newFakes(log, "a", "b", "c")
	ctx, cancel := context.WithCancel(t.Context())
	r := &Runner{OnReady: func() { log.add("all ready"); cancel() }}
	if err := r.Run(ctx, asComponents(fakes)...); err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := "start a,start b,start c,all ready,stop c,stop b,stop a"
	if got := log.String(); got != want {
		t.Fatalf("events = %q, want %q", got, want)
	}
}

func TestRunnerWaitsForReadinessBeforeNextStart(t *testing.T) {
	log := &eventLog{}
	fakes := newFakes(log, "a", "b")
	fakes[0].notReady = true
	r := &Runner{ReadyTimeout: 50 * time.Millisecond}
	err := r.Run(t.Context(), asComponents(fakes)...)
	if err == nil || !strings.Contains(err.Error(), "a: not ready after") {
		t.Fatalf("err = %v, want readiness timeout of a", err)
	}
	if got, want := log.String(), "start a,stop a"; got != want {
		t.Fatalf("events = %q, want %q (b must never start)", got, want)
	}
}

func TestRunnerFirstErrorWins(t *testing.T) {
	log := &eventLog{}
	fakes := newFakes(log, "a", "b", "c")
	boom := errors.New("boom")
	fakes[0].stopErr = errors.New("late error while stopping")
	r := &Runner{OnReady: func() { fakes[1].failNow <- boom }}
	err := r.Run(t.Context(), asComponents(fakes)...)
	if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "b: ") {
		t.Fatalf("err = %v, want b's failure", err)
	}
	if got, want := log.String(), "start a,start b,start c,fail b,stop c,stop a"; got != want {
		t.Fatalf("events = %q, want %q", got, want)
	}
}

func TestRunnerFailureBeforeReady(t *testing.T) {
	log := &eventLog{}
	fakes := newFakes(log, "a", "b")
	fakes[1].notReady = true
	fakes[1].failNow <- errors.New("cannot bind")
	err := (&Runner{}).Run(t.Context(), asComponents(fakes)...)
	if err == nil || err.Error() != "b: cannot bind" {
		t.Fatalf("err = %v", err)
	}
	if got, want := log.String(), "start a,start b,fail b,stop a"; got != want {
		t.Fatalf("events = %q, want %q", got, want)
	}
}

func TestRunnerReportsStopErrorsAndAbandonsHangers(t *testing.T) {
	log := &eventLog{}
	fakes := newFakes(log, "a", "b")
	fakes[0].stopErr = errors.New("close db")
	fakes[1].hang = true
	ctx, cancel := context.WithCancel(t.Context())
	r := &Runner{StopTimeout: 50 * time.Millisecond, OnReady: cancel}
	err := r.Run(ctx, asComponents(fakes)...)
	if err == nil || !strings.Contains(err.Error(), "stop a: close db") {
		t.Fatalf("err = %v, want a's stop error", err)
	}
	if got, want := log.String(), "start a,start b,stop a"; got != want {
		t.Fatalf("events = %q, want %q", got, want)
	}
}

func TestRunnerUnexpectedCleanExitIsAFailure(t *testing.T) {
	log := &eventLog{}
	fakes := newFakes(log, "a")
	r := &Runner{OnReady: func() { fakes[0].failNow <- nil }}
	err := r.Run(t.Context(), asComponents(fakes)...)
	if err == nil || err.Error() != "a: stopped unexpectedly" {
		t.Fatalf("err = %v", err)
	}
}

func TestRunnerStopBudgetBoundsTheWholeStop(t *testing.T) {
	log := &eventLog{}
	fakes := newFakes(log, "a", "b", "c")
	fakes[1].hang, fakes[2].hang = true, true
	ctx, cancel := context.WithCancel(t.Context())
	// Each hanger alone would be waited for 1 s; the budget ends it all sooner.
	r := &Runner{StopTimeout: time.Second, StopBudget: 200 * time.Millisecond, OnReady: cancel}
	start := time.Now()
	if err := r.Run(ctx, asComponents(fakes)...); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 800*time.Millisecond {
		t.Fatalf("stop took %s with a 200ms budget", took)
	}
	// a, the first started, is still cancelled (its stop is seen or abandoned).
	if got := log.String(); !strings.HasPrefix(got, "start a,start b,start c") {
		t.Fatalf("events = %q", got)
	}
}

func TestStartReturnsWhenReadyAndStopWaits(t *testing.T) {
	stopped := make(chan struct{})
	c := &funcComponent{name: "bg", run: func(ctx context.Context, ready func()) error {
		ready()
		<-ctx.Done()
		close(stopped)
		return nil
	}}
	b, err := Start(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-stopped:
		t.Fatal("stopped before Stop")
	default:
	}
	if err := b.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	<-stopped
	if err := b.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

func TestStartReportsAFailureBeforeReady(t *testing.T) {
	boom := errors.New("boom")
	_, err := Start(t.Context(), &funcComponent{name: "bad", run: func(context.Context, func()) error { return boom }})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	_, err = Start(t.Context(), &funcComponent{name: "quitter", run: func(context.Context, func()) error { return nil }})
	if err == nil {
		t.Fatal("a component that returned nil before ready was started")
	}
}

func TestStartGivesUpWhenCtxEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan struct{})
	c := &funcComponent{name: "slow", run: func(ctx context.Context, _ func()) error {
		cancel() // the caller gives up while it starts
		<-ctx.Done()
		close(stopped)
		return nil
	}}
	if _, err := Start(ctx, c); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	<-stopped
}

// funcComponent is a Component made of a function.
type funcComponent struct {
	name string
	run  func(ctx context.Context, ready func()) error
}

func (f *funcComponent) Name() string                                { return f.name }
func (f *funcComponent) Run(ctx context.Context, ready func()) error { return f.run(ctx, ready) }

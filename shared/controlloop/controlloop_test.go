package controlloop

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"

	"github.com/kedge/kedge/embedded/backoff"
)

// decision is one call of Decided.
type decision[T any] struct {
	decided T
	err     error
	at      time.Time
}

// start runs l (Run(ctx, synced) in the background) with Decided also
// feeding the returned channel, and stops it when the test ends.
func start[T any](t *testing.T, l *Loop[T], synced func()) <-chan decision[T] {
	t.Helper()
	decisions := make(chan decision[T], 100)
	next := l.Decided
	l.Decided = func(d T, err error) {
		if next != nil {
			next(d, err)
		}
		decisions <- decision[T]{d, err, time.Now()}
	}
	ctx, cancel := context.WithCancel(t.Context())
	wait := run(t, ctx, l, synced)
	t.Cleanup(func() {
		cancel()
		wait()
	})
	return decisions
}

// run runs l.Run(ctx, synced) in the background; wait waits for it to
// return, and fails the test if it returns an error.
func run[T any](t *testing.T, ctx context.Context, l *Loop[T], synced func()) (wait func()) {
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx, synced) }()
	return func() {
		t.Helper()
		if err := within(t, done, "Run returned"); err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

// await returns the next decision.
func await[T any](t *testing.T, decisions <-chan decision[T]) decision[T] {
	t.Helper()
	return within(t, decisions, "a reconcile")
}

// within returns the next value from ch, failing the test after 10 s.
func within[V any](t *testing.T, ch <-chan V, what string) V {
	t.Helper()
	var v V
	select {
	case v = <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("no sign within 10 s: %s", what)
	}
	return v
}

var errFail = errors.New("write failed")

// TestKicksCoalesce: kicks that come while a reconcile runs make exactly
// one more reconcile.
func TestKicksCoalesce(t *testing.T) {
	l := &Loop[int]{What: "test"}
	calls := 0
	l.Reconcile = func(context.Context) (int, error) {
		calls++
		if calls == 1 {
			for range 5 {
				l.Kick()
			}
		}
		return calls, nil
	}
	l.Decided = func(call int, _ error) {
		// Decided runs on the loop: what is queued now decides what runs next.
		if want := map[int]int{1: 1, 2: 0}[call]; len(l.kicks()) != want {
			t.Errorf("after reconcile %d: %d kicks queued, want %d", call, len(l.kicks()), want)
		}
	}
	decisions := start(t, l, nil)
	for want := 1; want <= 2; want++ {
		if d := await(t, decisions); d.decided != want {
			t.Fatalf("reconcile %d, want %d", d.decided, want)
		}
	}
}

// TestRetriesBackOff: a failing reconcile is retried without kicks, each
// retry waiting at least the backoff (growing to its cap), until it works.
func TestRetriesBackOff(t *testing.T) {
	l := &Loop[int]{What: "test", Retry: backoff.Backoff{Min: 20 * time.Millisecond, Max: 40 * time.Millisecond}}
	calls := 0
	l.Reconcile = func(context.Context) (int, error) {
		calls++
		if calls <= 3 {
			return calls, errFail
		}
		return calls, nil
	}
	decisions := start(t, l, nil)
	prev := await(t, decisions)
	for i, wait := range []time.Duration{20, 40, 40} {
		d := await(t, decisions)
		if gap := d.at.Sub(prev.at); gap < wait*time.Millisecond {
			t.Errorf("retry %d came after %v, before its backoff of %v ms", i+1, gap, wait)
		}
		prev = d
	}
	if prev.err != nil || prev.decided != 4 {
		t.Fatalf("reconcile %d: %v, want the 4th to succeed", prev.decided, prev.err)
	}
}

// TestKickDuringRetry: a change reconciles at once while a retry is
// pending, unless HoldWhileRetrying.
func TestKickDuringRetry(t *testing.T) {
	for _, hold := range []bool{false, true} {
		t.Run(map[bool]string{false: "at once", true: "held"}[hold], func(t *testing.T) {
			retry := time.Hour
			if hold {
				retry = 50 * time.Millisecond
			}
			l := &Loop[int]{What: "test", Retry: backoff.Backoff{Min: retry}, HoldWhileRetrying: hold}
			calls := 0
			l.Reconcile = func(context.Context) (int, error) {
				calls++
				return calls, errFail
			}
			l.Decided = func(call int, _ error) {
				if call == 1 {
					l.Kick()
				}
			}
			decisions := start(t, l, nil)
			first := await(t, decisions)
			second := await(t, decisions) // an hour away, unless the kick counts
			if gap := second.at.Sub(first.at); hold && gap < retry {
				t.Errorf("held kick reconciled after %v, before the retry at %v", gap, retry)
			}
		})
	}
}

// TestRunStopsOnCancel: Run returns nil when ctx ends while waiting for a
// kick, for a retry, or for caches that never sync.
func TestRunStopsOnCancel(t *testing.T) {
	never := cache.NewSharedIndexInformer(&cache.ListWatch{
		ListWithContextFunc: func(context.Context, metav1.ListOptions) (runtime.Object, error) {
			return nil, errFail
		},
		WatchFuncWithContext: func(context.Context, metav1.ListOptions) (watch.Interface, error) {
			return nil, errFail
		},
	}, &corev1.Service{}, 0, cache.Indexers{})
	cases := map[string]*Loop[int]{
		"waiting for a kick":  {Reconcile: func(context.Context) (int, error) { return 0, nil }},
		"waiting to retry":    {Reconcile: func(context.Context) (int, error) { return 0, errFail }, Retry: backoff.Backoff{Min: time.Hour}},
		"caches never synced": {Watch: []cache.SharedIndexInformer{never}},
	}
	for name, l := range cases {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			synced := make(chan struct{})
			l.Decided = func(int, error) { cancel() }
			wait := run(t, ctx, l, func() { close(synced) })
			if l.Reconcile == nil {
				cancel()
			}
			wait()
			select {
			case <-synced:
				if l.Reconcile == nil {
					t.Fatal("synced called for caches that never synced")
				}
			default:
				if l.Reconcile != nil {
					t.Fatal("synced not called")
				}
			}
		})
	}
}

// TestInformersWake: the first reconcile, after synced, sees the objects
// listed at start; later changes wake the loop.
func TestInformersWake(t *testing.T) {
	client := fake.NewClientset(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "ns"}})
	factory := informers.NewSharedInformerFactory(client, 0)
	services := factory.Core().V1().Services()
	synced := false
	l := &Loop[[]string]{What: "test", Watch: []cache.SharedIndexInformer{services.Informer()}}
	l.Reconcile = func(context.Context) ([]string, error) {
		if !synced {
			t.Error("reconciled before synced was called")
		}
		list, err := services.Lister().List(labels.Everything())
		var names []string
		for _, s := range list {
			names = append(names, s.Name)
		}
		slices.Sort(names)
		return names, err
	}
	decisions := start(t, l, func() { synced = true })
	ctx := t.Context()
	if d := await(t, decisions); !slices.Equal(d.decided, []string{"a"}) {
		t.Fatalf("first reconcile saw %v, want [a]", d.decided)
	}
	if _, err := client.CoreV1().Services("ns").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "b", Namespace: "ns"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for d := await(t, decisions); !slices.Equal(d.decided, []string{"a", "b"}); d = await(t, decisions) {
	}
}

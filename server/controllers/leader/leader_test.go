package leader

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/kedge/kedge/embedded/component"
	"github.com/kedge/kedge/scripts/testenv"
)

// fakeComponent counts how often it runs; it fails with fail if set.
type fakeComponent struct {
	running atomic.Int32
	fail    error
}

func (f *fakeComponent) Name() string { return "fake" }

func (f *fakeComponent) Run(ctx context.Context, ready func()) error {
	f.running.Add(1)
	defer f.running.Add(-1)
	ready()
	if f.fail != nil {
		return f.fail
	}
	<-ctx.Done()
	return nil
}

func elected(cs kubernetes.Interface, id string, c *fakeComponent) *Elected {
	return &Elected{
		Client: cs, Namespace: "kube-system", Lease: "kedge-controllers", Identity: id,
		Components:    []component.Component{c},
		LeaseDuration: 30 * time.Second, RenewDeadline: 20 * time.Second, RetryPeriod: 100 * time.Millisecond,
		Log: slog.New(slog.DiscardHandler),
	}
}

func holder(t *testing.T, cs kubernetes.Interface) string {
	l, err := cs.CoordinationV1().Leases("kube-system").Get(t.Context(), "kedge-controllers", metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

func TestOneLeaderAndHandoverOnStop(t *testing.T) {
	cs := fake.NewClientset()
	a, b := &fakeComponent{}, &fakeComponent{}
	ra := testenv.Start(t, elected(cs, "a", a).Run)
	testenv.WaitUntil(t, 10*time.Second, "a leads", func() bool { return a.running.Load() == 1 && ra.IsReady() })
	rb := testenv.Start(t, elected(cs, "b", b).Run)
	testenv.WaitUntil(t, 10*time.Second, "b ready as a follower", rb.IsReady)
	if b.running.Load() != 0 {
		t.Fatal("the follower runs the components too")
	}
	// a stops: its components stop, then the lease is released, so b takes
	// over long before the 30 s lease would expire.
	stopped := time.Now()
	if err := ra.Stop(); err != nil {
		t.Fatalf("a: %v", err)
	}
	if a.running.Load() != 0 {
		t.Fatal("a's components still run after Run returned")
	}
	testenv.WaitUntil(t, 10*time.Second, "b leads", func() bool { return b.running.Load() == 1 && holder(t, cs) == "b" })
	if d := time.Since(stopped); d > 5*time.Second {
		t.Fatalf("handover took %s; the lease was not released", d)
	}
	if err := rb.Stop(); err != nil {
		t.Fatalf("b: %v", err)
	}
	if h := holder(t, cs); h != "" {
		t.Fatalf("lease still held by %q after the last server stopped", h)
	}
}

func TestFailingComponentEndsRunAndReleases(t *testing.T) {
	cs := fake.NewClientset()
	c := &fakeComponent{fail: errors.New("boom")}
	r := testenv.Start(t, elected(cs, "a", c).Run)
	if err := r.Wait(10 * time.Second); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("err = %v, want the component's failure", err)
	}
	if h := holder(t, cs); h != "" {
		t.Fatalf("lease still held by %q after the leader failed", h)
	}
}

func TestLostLeaseEndsRun(t *testing.T) {
	cs := fake.NewClientset()
	// Once failing is set every renewal fails, as when the datastore is cut
	// off. (Reactors cannot be added while the client is in use.)
	var failing atomic.Bool
	cs.PrependReactor("update", "leases", func(clienttesting.Action) (bool, runtime.Object, error) {
		if failing.Load() {
			return true, nil, errors.New("datastore unreachable")
		}
		return false, nil, nil
	})
	c := &fakeComponent{}
	e := elected(cs, "a", c)
	e.LeaseDuration, e.RenewDeadline = 2*time.Second, 500*time.Millisecond
	r := testenv.Start(t, e.Run)
	testenv.WaitUntil(t, 10*time.Second, "a leads", func() bool { return c.running.Load() == 1 })
	failing.Store(true)
	if err := r.Wait(10 * time.Second); err == nil || !strings.Contains(err.Error(), "lost the kube-system/kedge-controllers lease") {
		t.Fatalf("err = %v, want a lost lease", err)
	}
	if c.running.Load() != 0 {
		t.Fatal("the components still run after the lease was lost")
	}
}

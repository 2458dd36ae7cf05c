package clusterdns

import (
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kedge/kedge/scripts/testenv"
)

// fakeEngine records starts and stops; the first failStarts starts fail.
type fakeEngine struct {
	mu         sync.Mutex
	running    int
	starts     int
	failStarts int
	corefile   string
}

func (e *fakeEngine) start(corefile string) (Stopper, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.starts++
	if e.starts <= e.failStarts {
		return nil, errors.New("listen udp 10.0.0.1:10053: address already in use")
	}
	e.running++
	e.corefile = corefile
	return stopFunc(func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.running--
	}), nil
}

func (e *fakeEngine) state() (running, starts int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.running, e.starts
}

type stopFunc func()

func (f stopFunc) Stop() { f() }

func service(name string, labels map[string]string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: Namespace, Labels: labels}}
}

// waitRunning checks the engine after each decision of the server (a
// wake-up on decided) until want DNS servers run.
func waitRunning(t *testing.T, e *fakeEngine, decided <-chan struct{}, want int, what string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		got, _ := e.state()
		if got == want {
			return
		}
		select {
		case <-decided:
		case <-deadline:
			t.Fatalf("%s: %d DNS servers running, want %d", what, got, want)
		}
	}
}

// TestServerFollowsTheService: DNS serves only while kube-dns is kedge's,
// a failed start is retried, and stopping the component stops DNS.
func TestServerFollowsTheService(t *testing.T) {
	client := fake.NewClientset(service("other", map[string]string{ManagedLabel: "true"}))
	engine := &fakeEngine{failStarts: 1}
	ctx := t.Context()
	// Decisions taken on an unlabelled kube-dns Service.
	unlabelled := make(chan bool, 100)
	decided := make(chan struct{}, 1)
	s := &Server{Client: client, Corefile: "corefile", Engine: engine.start, Log: slog.New(slog.DiscardHandler),
		Decided: func(d Decision, _ error) {
			if d.Service != nil && d.Service.Labels[ManagedLabel] == "" {
				unlabelled <- d.Serving
			}
			select {
			case decided <- struct{}{}:
			default:
			}
		}}
	r := testenv.Start(t, s.Run)
	r.WaitReady(5 * time.Second) // without a kube-dns Service
	svcs := client.CoreV1().Services(Namespace)
	if _, err := svcs.Create(ctx, service(ServiceName, nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Another Service with the label, or kube-dns without it: no DNS.
	select {
	case serving := <-unlabelled:
		if serving {
			t.Fatal("serving for a kube-dns Service without kedge's label")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the unlabelled kube-dns Service was not looked at within 10 s")
	}
	if running, starts := engine.state(); running != 0 || starts != 0 {
		t.Fatalf("started for a kube-dns Service that is not kedge's (running %d, starts %d)", running, starts)
	}
	if _, err := svcs.Update(ctx, service(ServiceName, map[string]string{ManagedLabel: "true"}), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, engine, decided, 1, "kedge's kube-dns, after one failed start")
	if _, starts := engine.state(); starts != 2 || engine.corefile != "corefile" {
		t.Errorf("starts %d (want 2: one failed, one retried), corefile %q", starts, engine.corefile)
	}
	if _, err := svcs.Update(ctx, service(ServiceName, map[string]string{ManagedLabel: "false"}), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, engine, decided, 0, "label no longer true")
	if _, err := svcs.Update(ctx, service(ServiceName, map[string]string{ManagedLabel: "true"}), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, engine, decided, 1, "label back")
	if err := svcs.Delete(ctx, ServiceName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, engine, decided, 0, "Service deleted")
	if _, err := svcs.Create(ctx, service(ServiceName, map[string]string{ManagedLabel: "true"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, engine, decided, 1, "Service created again")
	if err := r.Stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	waitRunning(t, engine, decided, 0, "component stopped")
}

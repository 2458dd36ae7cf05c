package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/kedge/kedge/shared/sdnotify"
)

func TestNotifyReady(t *testing.T) {
	n := ListenNotify(t)
	if n.IsReady() {
		t.Fatal("ready before any notification")
	}
	t.Setenv("NOTIFY_SOCKET", n.Path)
	notifier := sdnotify.Take()
	if err := notifier.Stopping(); err != nil {
		t.Fatal(err)
	}
	if err := notifier.Ready(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-n.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("READY=1 not seen")
	}
}

func TestStartWaitsAndStops(t *testing.T) {
	stopped := make(chan struct{})
	r := Start(t, func(ctx context.Context, ready func()) error {
		ready()
		ready() // later calls are ignored
		<-ctx.Done()
		close(stopped)
		return nil
	})
	r.WaitReady(5 * time.Second)
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	<-stopped
	if err := r.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

func TestWaitUntil(t *testing.T) {
	start := time.Now()
	WaitUntil(t, 5*time.Second, "50 ms to pass", func() bool { return time.Since(start) > 50*time.Millisecond })
}

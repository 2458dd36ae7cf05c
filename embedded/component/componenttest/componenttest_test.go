package componenttest

import (
	"context"
	"testing"
)

// twice calls ready twice and records that it was stopped.
type twice struct{ stopped bool }

func (c *twice) Name() string { return "twice" }

func (c *twice) Run(ctx context.Context, ready func()) error {
	ready()
	ready()
	<-ctx.Done()
	c.stopped = true
	return nil
}

func TestStartStopsAtCleanup(t *testing.T) {
	c := &twice{}
	t.Run("running", func(t *testing.T) {
		Start(t, c)
		if c.stopped {
			t.Fatal("stopped before the test ended")
		}
	})
	if !c.stopped {
		t.Fatal("still running after the test ended")
	}
}

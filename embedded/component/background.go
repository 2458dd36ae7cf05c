package component

import (
	"context"
	"fmt"
	"sync"
)

// Background is a component started on its own by Start, outside a Runner.
type Background struct {
	cancel context.CancelFunc
	exited chan struct{}
	err    error
}

// Start runs c in the background and returns once it is ready, or with
// its error if it returns first, or with ctx's error if ctx ends first
// (then c has been stopped). Stop the returned component with Stop.
func Start(ctx context.Context, c Component) (*Background, error) {
	cctx, cancel := context.WithCancel(ctx)
	b := &Background{cancel: cancel, exited: make(chan struct{})}
	ready := make(chan struct{})
	var once sync.Once
	go func() {
		defer close(b.exited)
		b.err = c.Run(cctx, func() { once.Do(func() { close(ready) }) })
	}()
	select {
	case <-ready:
		return b, nil
	case <-b.exited:
		cancel()
		if b.err == nil {
			return nil, fmt.Errorf("%s: stopped before it was ready", c.Name())
		}
		return nil, fmt.Errorf("%s: %w", c.Name(), b.err)
	case <-ctx.Done():
		b.Stop()
		return nil, ctx.Err()
	}
}

// Stop cancels the component and waits until its Run returned; it returns
// what Run returned. It may be called more than once.
func (b *Background) Stop() error {
	b.cancel()
	<-b.exited
	return b.err
}

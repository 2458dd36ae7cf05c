// Package kine runs kine, the etcd-API shim over SQL databases, in-process.
package kine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/k3s-io/kine/pkg/drivers/generic"
	"github.com/k3s-io/kine/pkg/endpoint"

	"github.com/kedge/kedge/embedded/component"
	"github.com/kedge/kedge/embedded/etcdcheck"
)

// Kine serves the etcd API for a SQL datastore on a local socket.
type Kine struct {
	// Endpoint is the kine DSN (sqlite://..., postgres://..., mysql://...).
	// It may contain a password: it is never logged.
	Endpoint string
	// Listener is where the etcd API is served, e.g. unix:///path/kine.sock.
	Listener string
	// DataDir, if set, is created (0700) before kine starts.
	DataDir string
	// StartTimeout bounds connecting to the database and the first write.
	StartTimeout time.Duration
	Log          *slog.Logger
}

var _ component.Component = (*Kine)(nil)

// Name implements component.Component.
func (k *Kine) Name() string { return "kine" }

// Run starts kine, checks it with a real write, and serves until ctx is done.
// On cancel it stops the gRPC server and waits for the database to close.
func (k *Kine) Run(ctx context.Context, ready func()) error {
	if k.DataDir != "" {
		if err := os.MkdirAll(k.DataDir, 0o700); err != nil {
			return fmt.Errorf("create datastore dir: %w", err)
		}
	}
	kctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	timeout := k.StartTimeout
	if timeout <= 0 {
		timeout = 20 * time.Second
	}

	type result struct {
		cfg endpoint.ETCDConfig
		err error
	}
	started := make(chan result, 1)
	go func() {
		cfg, err := endpoint.Listen(kctx, endpoint.Config{
			Endpoint:  k.Endpoint,
			Listener:  k.Listener,
			WaitGroup: &wg,
			// kine's own defaults, except a smaller idle pool for small devices.
			ConnectionPoolConfig: generic.ConnectionPoolConfig{MaxIdle: 2, MaxIdleTime: 2 * time.Minute},
			NotifyInterval:       5 * time.Second,
			EmulatedETCDVersion:  "3.6.11",
			CompactInterval:      5 * time.Minute,
			CompactTimeout:       5 * time.Second,
			CompactMinRetain:     1000,
			CompactBatchSize:     1000,
			PollBatchSize:        500,
			PollInterval:         time.Second,
		})
		started <- result{cfg, err}
	}()
	var res result
	select {
	case res = <-started:
	case <-time.After(timeout):
		return fmt.Errorf("datastore did not answer within %s", timeout)
	case <-ctx.Done():
		return nil
	}
	if res.err != nil {
		return fmt.Errorf("start kine: %w", res.err)
	}
	checkCtx, cancelCheck := context.WithTimeout(ctx, timeout)
	err := etcdcheck.Write(checkCtx, etcdcheck.Target{Endpoints: res.cfg.Endpoints})
	cancelCheck()
	if err != nil && ctx.Err() == nil {
		cancel()
		waitTimeout(&wg, 5*time.Second)
		return fmt.Errorf("datastore write check: %w", err)
	}
	ready()
	<-ctx.Done()
	cancel()
	if !waitTimeout(&wg, 10*time.Second) {
		return errors.New("kine did not close the datastore within 10s")
	}
	return nil
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

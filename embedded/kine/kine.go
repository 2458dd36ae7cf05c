// Package kine runs kine, the etcd-API shim over SQL databases, in-process.
package kine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
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
	// CompactInterval is how often kine deletes revisions older than the
	// newest CompactMinRetain; 0 means DefaultCompactInterval.
	CompactInterval time.Duration
	// CompactMinRetain is how many of the newest revisions compaction keeps;
	// 0 means DefaultCompactMinRetain.
	CompactMinRetain int64
	// SQLiteFile, if set, is the SQLite file behind Endpoint: kedge keeps it
	// bounded (see Maintainer) every MaintainInterval (0 means
	// DefaultMaintainInterval) while kine runs.
	SQLiteFile       string
	MaintainInterval time.Duration
	Log              *slog.Logger
}

// Defaults for the zero values of Kine's fields.
const (
	DefaultCompactInterval  = 5 * time.Minute
	DefaultCompactMinRetain = 1000
	DefaultMaintainInterval = 10 * time.Minute
)

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
	dsn, err := k.dsn(ctx)
	if err != nil {
		return err
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
			Endpoint:  dsn,
			Listener:  k.Listener,
			WaitGroup: &wg,
			// kine's own defaults, except a smaller idle pool for small devices.
			ConnectionPoolConfig: generic.ConnectionPoolConfig{MaxIdle: 2, MaxIdleTime: 2 * time.Minute},
			NotifyInterval:       5 * time.Second,
			EmulatedETCDVersion:  "3.6.11",
			CompactInterval:      or(k.CompactInterval, DefaultCompactInterval),
			CompactTimeout:       5 * time.Second,
			CompactMinRetain:     or(k.CompactMinRetain, DefaultCompactMinRetain),
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
		// Stop kine's connection attempts first, so that none logs after
		// this error (which is the last thing a failed start prints).
		cancel()
		select {
		case <-started:
		case <-time.After(5 * time.Second):
		}
		return fmt.Errorf("datastore did not answer within %s", timeout)
	case <-ctx.Done():
		return nil
	}
	if res.err != nil {
		return fmt.Errorf("start kine: %w", res.err)
	}
	checkCtx, cancelCheck := context.WithTimeout(ctx, timeout)
	err = etcdcheck.Write(checkCtx, etcdcheck.Target{Endpoints: res.cfg.Endpoints})
	cancelCheck()
	if err != nil && ctx.Err() == nil {
		cancel()
		waitTimeout(&wg, 5*time.Second)
		return fmt.Errorf("datastore write check: %w", err)
	}
	if k.SQLiteFile != "" {
		m := &Maintainer{File: k.SQLiteFile, Log: k.Log}
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.Run(kctx, or(k.MaintainInterval, DefaultMaintainInterval))
		}()
	}
	ready()
	<-ctx.Done()
	cancel()
	if !waitTimeout(&wg, 10*time.Second) {
		return errors.New("kine did not close the datastore within 10s")
	}
	return nil
}

// dsn is Endpoint, told to skip kine's VACUUM at start when SQLiteFile
// is already in incremental auto-vacuum mode: that VACUUM rewrites the
// whole file at every start (slow on a large one, and wear on an SD card),
// and is needed only once, to turn on incremental mode in a database made
// before kedge asked for it; after that the Maintainer returns freed pages.
func (k *Kine) dsn(ctx context.Context) (string, error) {
	if k.SQLiteFile == "" {
		return k.Endpoint, nil
	}
	inc, err := Incremental(ctx, k.SQLiteFile)
	if err != nil {
		return "", fmt.Errorf("datastore: %w", err)
	}
	if !inc {
		return k.Endpoint, nil
	}
	sep := "?"
	if strings.Contains(k.Endpoint, "?") {
		sep = "&"
	}
	return k.Endpoint + sep + "_kine_disable_startup_vacuum=true", nil
}

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
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

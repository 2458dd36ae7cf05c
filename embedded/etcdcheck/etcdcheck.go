// Package etcdcheck proves that an etcd-API endpoint (etcd or kine) accepts
// writes, for readiness checks.
package etcdcheck

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Target is an etcd-API endpoint and the TLS files to reach it (all optional).
type Target struct {
	Endpoints                 []string
	CAFile, CertFile, KeyFile string
}

// healthKey is written by every check; it lives outside /registry so the
// apiserver never sees it.
const healthKey = "/kedge/health"

// Config is the client configuration for t.
func Config(ctx context.Context, t Target) (clientv3.Config, error) {
	var tlsConfig *tls.Config
	if t.CAFile != "" || t.CertFile != "" {
		info := transport.TLSInfo{TrustedCAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile}
		var err error
		if tlsConfig, err = info.ClientConfig(); err != nil {
			return clientv3.Config{}, fmt.Errorf("datastore TLS: %w", err)
		}
	}
	return clientv3.Config{
		Context:     ctx,
		Endpoints:   t.Endpoints,
		TLS:         tlsConfig,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	}, nil
}

// Client opens a client for t. The caller closes it.
func Client(ctx context.Context, t Target) (*clientv3.Client, error) {
	cfg, err := Config(ctx, t)
	if err != nil {
		return nil, err
	}
	return clientv3.New(cfg)
}

// Write puts a key and reads it back, retrying until ctx ends.
func Write(ctx context.Context, t Target) error {
	cli, err := Client(ctx, t)
	if err != nil {
		return err
	}
	defer cli.Close()
	var lastErr error
	for {
		attempt, cancel := context.WithTimeout(ctx, 5*time.Second)
		now := time.Now().UTC().Format(time.RFC3339Nano)
		_, lastErr = cli.Put(attempt, healthKey, now)
		if lastErr == nil {
			_, lastErr = cli.Get(attempt, healthKey)
		}
		cancel()
		if lastErr == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), lastErr)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

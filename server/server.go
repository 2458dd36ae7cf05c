// Package server runs a kedge control-plane node: datastore, PKI, the
// upstream kube-apiserver, kube-scheduler and kube-controller-manager, and
// the admin kubeconfig.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/kedge/kedge/embedded/component"
	"github.com/kedge/kedge/embedded/memtune"
	"github.com/kedge/kedge/server/config"
	"github.com/kedge/kedge/shared/certlife"
	"github.com/kedge/kedge/shared/sdnotify"
)

// ControllersLease (in kube-system) is held by the server that runs the
// scheduler and the controller-manager.
const ControllersLease = "kedge-controllers"

// Run brings the control plane up and serves until ctx is cancelled, then
// stops every component in reverse order. It returns the first failure.
// Problems with the host (data dir, ports) are reported before anything in
// the data dir is touched.
func Run(ctx context.Context, cc *config.Completed, log *slog.Logger) error {
	notifier := sdnotify.Take()
	if err := certlife.Setup(log); err != nil {
		return err
	}
	if err := preflight(cc); err != nil {
		return err
	}
	p, err := prepare(ctx, cc, log)
	if err != nil || p == nil {
		return err // p is nil when ctx ended while joining the cluster
	}
	defer p.egress.Close()
	components, err := p.components()
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		_ = notifier.Stopping()
	}()
	start := time.Now()
	runner := &component.Runner{
		Log:          log,
		ReadyTimeout: 2 * time.Minute,
		StopTimeout:  10 * time.Second,
		// Ends before main's 15 s grace, also when etcd lost quorum and stops hang.
		StopBudget: 12 * time.Second,
		OnReady: func() {
			log.Info("kedge server is ready",
				"seconds", fmt.Sprintf("%.1f", time.Since(start).Seconds()),
				"kubeconfig", cc.WriteKubeconfig,
				"join", fmt.Sprintf("kedge agent --server https://%s --token-file %s",
					net.JoinHostPort(cc.AdvertiseIP.String(), strconv.Itoa(cc.HTTPSListenPort)), cc.Paths.TokenFile))
			memtune.ReleaseStartupPages(log)
			if err := notifier.Ready(); err != nil {
				log.Warn("cannot tell systemd that kedge is ready", "error", err)
			}
		},
	}
	err = runner.Run(ctx, components...)
	if err == nil {
		log.Info("kedge server stopped")
	}
	return err
}

// preflight fails fast, before anything is written, on a data dir that
// cannot be written and on ports that are taken.
func preflight(cc *config.Completed) error {
	if err := os.MkdirAll(cc.Paths.ServerDir, 0o700); err != nil {
		return fmt.Errorf("--data-dir %s is not writable: %w", cc.DataDir, errors.Unwrap(err))
	}
	probe, err := os.CreateTemp(cc.Paths.ServerDir, ".write-check-*")
	if err != nil {
		return fmt.Errorf("--data-dir %s is not writable: %w", cc.DataDir, errors.Unwrap(err))
	}
	probe.Close()
	os.Remove(probe.Name())

	ports := []struct {
		flag string
		addr string
	}{
		{"--https-listen-port", net.JoinHostPort(cc.BindAddress, strconv.Itoa(cc.HTTPSListenPort))},
		{"--apiserver-port", net.JoinHostPort("127.0.0.1", strconv.Itoa(cc.APIServerPort))},
	}
	if cc.Datastore == config.DatastoreEmbeddedEtcd {
		ports = append(ports,
			struct{ flag, addr string }{"--etcd-client-port", net.JoinHostPort("127.0.0.1", strconv.Itoa(cc.EtcdClientPort))},
			struct{ flag, addr string }{"--etcd-peer-port", net.JoinHostPort(cc.NodeIP.String(), strconv.Itoa(cc.EtcdPeerPort))})
	}
	for _, p := range ports {
		l, err := net.Listen("tcp", p.addr)
		if err != nil {
			return fmt.Errorf("%s: cannot listen on %s: %w", p.flag, p.addr, errors.Unwrap(err))
		}
		l.Close()
	}
	return nil
}

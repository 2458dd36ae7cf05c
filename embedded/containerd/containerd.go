// Package containerd runs containerd v2 in-process, with the plugins a CRI
// node needs (overlayfs, runc shims, CRI, image import). containerd
// registers its plugins globally: Run works once per process.
package containerd

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	client "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/cmd/containerd/server"
	srvconfig "github.com/containerd/containerd/v2/cmd/containerd/server/config"
	"github.com/containerd/containerd/v2/core/mount"

	"github.com/kedge/kedge/embedded/component"
)

// Containerd is containerd serving on the socket its config names.
type Containerd struct {
	// ConfigFile is a rendered config.toml (see agent/runtime/containerd).
	ConfigFile string
	// Socket is the gRPC socket the config sets, used by the readiness check.
	Socket string
}

var _ component.Component = (*Containerd)(nil)

// Name implements component.Component.
func (c *Containerd) Name() string { return "containerd" }

// Run starts containerd and is ready once CRI is up and the socket answers a
// Version call. On cancel it stops every plugin; running containers and their
// shims are left alone and re-attached by the next start.
func (c *Containerd) Run(ctx context.Context, ready func()) error {
	cfg := &srvconfig.Config{}
	if err := srvconfig.LoadConfig(ctx, c.ConfigFile, cfg); err != nil {
		return fmt.Errorf("load containerd config: %w", err)
	}
	if err := server.CreateTopLevelDirectories(cfg); err != nil {
		return fmt.Errorf("containerd directories: %w", err)
	}
	if err := mount.SetTempMountLocation(filepath.Join(cfg.Root, "tmpmounts")); err != nil {
		return fmt.Errorf("containerd temp mounts: %w", err)
	}
	srv, err := server.New(ctx, cfg)
	if err != nil {
		return fmt.Errorf("create containerd: %w", err)
	}
	defer srv.Stop()
	if err := srv.Start(ctx); err != nil {
		return fmt.Errorf("start containerd: %w", err)
	}
	waited := make(chan struct{})
	go func() { srv.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-ctx.Done():
		return nil
	}
	go component.PollReady(ctx, 100*time.Millisecond, c.versionCheck, ready)
	<-ctx.Done()
	return nil
}

func (c *Containerd) versionCheck(ctx context.Context) error {
	cl, err := client.New(c.Socket, client.WithTimeout(2*time.Second))
	if err != nil {
		return err
	}
	defer cl.Close()
	_, err = cl.Version(ctx)
	return err
}

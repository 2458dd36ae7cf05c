// Package coredns runs CoreDNS (github.com/coredns/coredns) in this
// process from a Corefile, with only the plugins kedge's cluster DNS uses:
// bind, errors, kubernetes, forward, cache and loadbalance. It is the only
// package that imports CoreDNS.
//
// CoreDNS keeps some state in package variables (caddy's instance list, the
// registered plugins); the process runs at most one Server at a time.
package coredns

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/go-logr/logr"
	"k8s.io/klog/v2"

	"github.com/kedge/kedge/embedded/component"

	// The plugins a Corefile may name.
	_ "github.com/coredns/coredns/plugin/acl"
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
)

// Server is CoreDNS serving Corefile, as a component. CoreDNS keeps state
// in package variables of its own (caddy's instance list and plugin
// registry), so a process runs one Server at a time.
type Server struct {
	Corefile string
}

var _ component.Component = (*Server)(nil)

// Name implements component.Component.
func (s *Server) Name() string { return "coredns" }

// Run implements component.Component: it parses the Corefile, sets up its
// plugins and is ready once the listeners are open (the kubernetes plugin
// first waits up to 5 s for its first list of Services and
// EndpointSlices); it stops serving when ctx ends. A bad Corefile or a
// listen address in use is an error.
//
// CoreDNS's kubernetes plugin points klog at CoreDNS's own logger when it
// is set up; Run puts back the logger klog had before, right after that
// directive (before the plugin's wait), so the kubelet's and kube-proxy's
// logs keep going to kedge's log.
func (s *Server) Run(ctx context.Context, ready func()) error {
	// No banner or zone list on stdout; kedge logs what it starts.
	caddy.Quiet = true
	dnsserver.Quiet = true
	before := klog.Background()
	defer restoreKlog(before)
	// Caddy keeps parsing callbacks for the process's life: one small
	// closure per start (starts follow the kube-dns Service, so they are
	// rare); the newest runs last and wins.
	caddy.RegisterParsingCallback("dns", "kubernetes", func(caddy.Context) error {
		restoreKlog(before)
		return nil
	})
	inst, err := caddy.Start(caddy.CaddyfileInput{Contents: []byte(s.Corefile), Filepath: "Corefile", ServerTypeName: "dns"})
	if err != nil {
		if inst != nil {
			inst.ShutdownCallbacks()
		}
		return fmt.Errorf("start coredns: %w", err)
	}
	restoreKlog(before)
	ready()
	<-ctx.Done()
	_ = inst.Stop() // logs its own errors
	inst.ShutdownCallbacks()
	return nil
}

// restoreKlog sets klog's logger back to prev if prev writes to a
// slog.Handler (what embedded/logging installs), and otherwise to klog's
// own output.
func restoreKlog(prev logr.Logger) {
	if u, ok := prev.GetSink().(interface{ GetUnderlying() slog.Handler }); ok {
		klog.SetSlogLogger(slog.New(u.GetUnderlying()))
		return
	}
	klog.ClearLogger()
}

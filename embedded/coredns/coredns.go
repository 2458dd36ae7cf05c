// Package coredns runs CoreDNS (github.com/coredns/coredns) in this
// process from a Corefile, with only the plugins kedge's cluster DNS uses:
// bind, errors, kubernetes, forward, cache and loadbalance. It is the only
// package that imports CoreDNS.
//
// CoreDNS keeps some state in package variables (caddy's instance list, the
// registered plugins); the process runs at most one Instance at a time.
package coredns

import (
	"fmt"
	"log/slog"
	"sync"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/go-logr/logr"
	"k8s.io/klog/v2"

	// The plugins a Corefile may name.
	_ "github.com/coredns/coredns/plugin/acl"
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
)

// startMu makes Start one at a time; klogBefore is klog's logger when the
// current Start began, which the parsing callback after the kubernetes
// directive puts back.
var (
	startMu    sync.Mutex
	klogBefore logr.Logger
)

func init() {
	// No banner or zone list on stdout; kedge logs what it starts.
	caddy.Quiet = true
	dnsserver.Quiet = true
	// The kubernetes plugin's set-up points klog at CoreDNS's logger; put
	// kedge's back at once, before the plugin waits (up to 5 s) for its
	// first lists, so the kubelet's and kube-proxy's logs are not relabelled.
	caddy.RegisterParsingCallback("dns", "kubernetes", func(caddy.Context) error {
		restoreKlog(klogBefore)
		return nil
	})
}

// Instance is a running CoreDNS.
type Instance struct {
	inst     *caddy.Instance
	stopOnce sync.Once
}

// Start parses corefile, sets up its plugins and starts serving. It returns
// once the listeners are open (the kubernetes plugin first waits up to 5 s
// for its first list of Services and EndpointSlices). A bad Corefile or a
// listen address in use is an error.
//
// CoreDNS's kubernetes plugin points klog at CoreDNS's own logger when it
// is set up; Start puts back the slog logger klog had right after that, so
// the kubelet's and kube-proxy's logs keep going to kedge's log. Starts are
// serialised.
func Start(corefile string) (*Instance, error) {
	startMu.Lock()
	defer startMu.Unlock()
	klogBefore = klog.Background()
	defer restoreKlog(klogBefore)
	inst, err := caddy.Start(caddy.CaddyfileInput{Contents: []byte(corefile), Filepath: "Corefile", ServerTypeName: "dns"})
	if err != nil {
		if inst != nil {
			inst.ShutdownCallbacks()
		}
		return nil, fmt.Errorf("start coredns: %w", err)
	}
	return &Instance{inst: inst}, nil
}

// Stop closes the listeners and stops the plugins' watches. It may be
// called more than once.
func (i *Instance) Stop() {
	i.stopOnce.Do(func() {
		_ = i.inst.Stop() // logs its own errors
		i.inst.ShutdownCallbacks()
	})
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

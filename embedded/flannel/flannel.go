// Package flannel runs flannel (github.com/flannel-io/flannel) in-process:
// its kube subnet manager (the node's pod CIDR and the other nodes' leases
// come from Node objects and their flannel.alpha.coreos.com annotations),
// the vxlan backend (device flannel.<VNI>, one route, ARP and FDB entry per
// remote node) and its nftables traffic manager (masquerade of pod traffic
// leaving the cluster network, forward accepts for the cluster network).
//
// flannel's root package is not imported: it links every backend,
// including one whose cloud SDK the Go proxy does not serve. This package
// wires the pieces the way flannel's main.go does for
// --kube-subnet-mgr --ip-masq with the vxlan backend.
//
// flannel logs through klog's global functions, so its lines reach slog
// through the klog routing that embedded/logging sets up for the process
// (component=k8s); they cannot be scoped separately.
package flannel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/flannel-io/flannel/pkg/backend"
	_ "github.com/flannel-io/flannel/pkg/backend/vxlan" // registers the vxlan backend
	"github.com/flannel-io/flannel/pkg/ip"
	"github.com/flannel-io/flannel/pkg/ipmatch"
	"github.com/flannel-io/flannel/pkg/subnet"
	"github.com/flannel-io/flannel/pkg/subnet/kube"
	"github.com/flannel-io/flannel/pkg/trafficmngr/nftables"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kedge/kedge/embedded/backoff"
	"github.com/kedge/kedge/embedded/component"
)

// Lease is the node's share of the cluster network.
type Lease struct {
	// Network is the cluster CIDR, Subnet the node's pod CIDR in it.
	Network, Subnet *net.IPNet
	// MTU is what pod interfaces should use: the node interface's MTU less
	// the vxlan overhead.
	MTU int
}

// Flannel is the flannel component. One per process: flannel's kube
// subnet manager reads the node name from the NODE_NAME environment
// variable, which Run sets.
type Flannel struct {
	// Kubeconfig holds the node's credentials (the kubelet's).
	Kubeconfig string
	NodeName   string
	// NodeIP selects the interface vxlan runs over (the one that owns it)
	// and is published as the node's public-ip annotation.
	NodeIP      net.IP
	ClusterCIDR string
	// NetConfFile is flannel's net-conf.json, written by the caller with
	// NetConf(ClusterCIDR) before Run.
	NetConfFile string
	// ReadyAtStart makes Run ready before it contacts the server: the node
	// has a network configuration from an earlier run, so pods can start
	// while the server is unreachable.
	ReadyAtStart bool
	// OnLease is called with the node's lease once the vxlan device, routes
	// and nftables rules are in place, before Run reports ready. An error
	// stops Run.
	OnLease func(Lease) error
	Log     *slog.Logger
	// RetryInterval bounds the wait between attempts to reach the server
	// (default 30 s; attempts start at 1 s and double).
	RetryInterval time.Duration
}

var _ component.Component = (*Flannel)(nil)

// Name implements component.Component.
func (f *Flannel) Name() string { return "flannel" }

// Run sets up the node's overlay network and keeps it in step with the
// other nodes until ctx is cancelled. It retries while the server is
// unreachable or the node has no pod CIDR yet. On cancel it leaves the
// vxlan device, routes and rules in place so that pods keep their network
// while the agent restarts.
func (f *Flannel) Run(ctx context.Context, ready func()) error {
	err := f.run(ctx, ready)
	if ctx.Err() != nil {
		// Stopped while starting: flannel's set-up calls fail with the
		// cancelled context; that is the stop, not a failure.
		return nil
	}
	return err
}

func (f *Flannel) run(ctx context.Context, ready func()) error {
	v6 := f.NodeIP.To4() == nil
	if _, cidr, _ := net.ParseCIDR(f.ClusterCIDR); (cidr.IP.To4() == nil) != v6 {
		return fmt.Errorf("flannel: node IP %s and cluster CIDR %s are of different IP families", f.NodeIP, f.ClusterCIDR)
	}
	if err := enableForwarding(v6); err != nil {
		return err
	}
	// flannel's vxlan device watcher calls klog.Fatal (exiting the whole
	// agent) if it cannot subscribe to link updates; find that out here,
	// where it is an error.
	if err := probeLinkSubscribe(); err != nil {
		return fmt.Errorf("flannel needs netlink link updates: %w", err)
	}
	if f.ReadyAtStart {
		ready()
	}
	ipStack, err := ipmatch.GetIPFamily(!v6, v6)
	if err != nil {
		return err
	}
	opts := ipmatch.PublicIPOpts{PublicIP: f.NodeIP.String()}
	if v6 {
		opts = ipmatch.PublicIPOpts{PublicIPv6: f.NodeIP.String()}
	}
	extIface, err := ipmatch.LookupExtIface(f.NodeIP.String(), "", "", ipStack, opts)
	if err != nil {
		return fmt.Errorf("flannel: the interface of node IP %s: %w", f.NodeIP, err)
	}
	if err := os.Setenv("NODE_NAME", f.NodeName); err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", f.Kubeconfig)
	if err != nil {
		return fmt.Errorf("load %s: %w", f.Kubeconfig, err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}

	// Each attempt gets its own context: a failed one leaves a node
	// informer running on it.
	var sm subnet.Manager
	if !f.retry(ctx, "start the kube subnet manager", func() error {
		actx, cancel := context.WithCancel(ctx)
		m, err := kube.NewSubnetManager(actx, "", f.Kubeconfig, AnnotationPrefix, f.NetConfFile, true)
		if err != nil {
			cancel()
			return err
		}
		sm = m
		context.AfterFunc(ctx, cancel)
		return nil
	}) {
		return nil
	}
	config, err := sm.GetNetworkConfig(ctx)
	if err != nil {
		return err
	}
	if !f.retry(ctx, "see the node's pod CIDR", func() error {
		node, err := client.CoreV1().Nodes().Get(ctx, f.NodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if node.Spec.PodCIDR == "" {
			return errNoPodCIDR
		}
		return nil
	}) {
		return nil
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	be, err := backend.NewManager(ctx, sm, extIface).GetBackend(config.BackendType)
	if err != nil {
		return err
	}
	var bn backend.Network
	if !f.retry(ctx, "register the vxlan network", func() (err error) {
		bn, err = be.RegisterNetwork(ctx, &wg, config)
		return err
	}) {
		return nil
	}
	l := bn.Lease()

	rules := &nftables.NFTablesManager{}
	if err := rules.Init(ctx); err != nil {
		return fmt.Errorf("flannel nftables: %w", err)
	}
	if err := rules.SetupAndEnsureMasqRules(ctx, config.Network, ip.IP4Net{}, ip.IP4Net{},
		config.IPv6Network, ip.IP6Net{}, ip.IP6Net{}, l, 0, false); err != nil {
		return fmt.Errorf("flannel masquerade rules: %w", err)
	}
	rules.SetupAndEnsureForwardRules(ctx, config.Network, config.IPv6Network, 0)

	lease := Lease{Network: config.Network.ToIPNet(), Subnet: l.Subnet.ToIPNet(), MTU: bn.MTU()}
	if v6 {
		lease.Network, lease.Subnet = config.IPv6Network.ToIPNet(), l.IPv6Subnet.ToIPNet()
	}
	if f.OnLease != nil {
		if err := f.OnLease(lease); err != nil {
			return err
		}
	}
	f.Log.Info("flannel is ready", "subnet", lease.Subnet, "mtu", lease.MTU, "interface", extIface.IfaceName)
	ready()

	wg.Add(1)
	go func() {
		defer wg.Done()
		bn.Run(ctx)
	}()
	// Clears the node's NetworkUnavailable condition.
	f.retry(ctx, "mark the node's network available", func() error { return sm.CompleteLease(ctx, l, &wg) })
	<-ctx.Done()
	return nil
}

var errNoPodCIDR = errors.New("the controller-manager has not given the node a pod CIDR yet")

// retry calls fn until it succeeds (true) or ctx ends (false), logging
// failures and backing off from 1 s to RetryInterval.
func (f *Flannel) retry(ctx context.Context, what string, fn func() error) bool {
	limit := f.RetryInterval
	if limit <= 0 {
		limit = 30 * time.Second
	}
	retry := backoff.Backoff{Min: time.Second, Max: limit}
	for {
		err := fn()
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		level := slog.LevelWarn
		if errors.Is(err, errNoPodCIDR) {
			level = slog.LevelInfo // expected for a moment after the node registers
		}
		wait := retry.Next()
		f.Log.Log(ctx, level, "flannel: cannot "+what+"; retrying", "error", err, "retry_in", wait)
		if !backoff.Sleep(ctx, wait) {
			return false
		}
	}
}

// enableForwarding sets net.ipv4.ip_forward (or IPv6 forwarding) to 1 in
// this network namespace.
func enableForwarding(v6 bool) error {
	path := "/proc/sys/net/ipv4/ip_forward"
	if v6 {
		path = "/proc/sys/net/ipv6/conf/all/forwarding"
	}
	if b, err := os.ReadFile(path); err == nil && string(b) == "1\n" {
		return nil
	}
	if err := os.WriteFile(path, []byte("1"), 0o644); err != nil {
		return fmt.Errorf("enable IP forwarding: %w", err)
	}
	return nil
}

// probeLinkSubscribe opens and closes the netlink subscription to link
// updates that netlink.LinkSubscribe opens for flannel's device watcher.
func probeLinkSubscribe() error {
	s, err := nl.Subscribe(unix.NETLINK_ROUTE, unix.RTNLGRP_LINK)
	if err != nil {
		return err
	}
	s.Close()
	return nil
}

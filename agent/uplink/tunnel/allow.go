package tunnel

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync/atomic"
	"time"
)

// DefaultKubeletPort is the kubelet's HTTPS port.
const DefaultKubeletPort = 10250

// Allow is what the server may dial through this node's tunnel: the
// node's own kubelet (127.0.0.1 or the node IP, on the kubelet port) and
// pods, any port of an IP in the node's pod CIDRs that is not an address
// of this host (the CNI bridge's gateway and flannel's device are inside
// the pod CIDR but are the host). Everything else is refused. Safe for
// concurrent use; SetPodCIDRs may be called at any time.
type Allow struct {
	NodeIP      net.IP
	KubeletPort int // default DefaultKubeletPort
	// LocalAddrs lists this host's addresses (default net.InterfaceAddrs).
	LocalAddrs func() ([]net.Addr, error)

	podCIDRs atomic.Pointer[[]netip.Prefix]
}

// SetPodCIDRs replaces the node's pod CIDRs (nil entries are skipped).
func (a *Allow) SetPodCIDRs(cidrs ...*net.IPNet) {
	var ps []netip.Prefix
	for _, c := range cidrs {
		if c == nil {
			continue
		}
		addr, ok := netip.AddrFromSlice(c.IP)
		if !ok {
			continue
		}
		ones, _ := c.Mask.Size()
		ps = append(ps, netip.PrefixFrom(addr.Unmap(), ones).Masked())
	}
	a.podCIDRs.Store(&ps)
}

// Check returns nil if network/address may be dialed, else why not.
func (a *Allow) Check(network, address string) error {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return fmt.Errorf("tunnel: network %q is not allowed", network)
	}
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("tunnel: address %q: %w", address, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return fmt.Errorf("tunnel: address %q: bad port", address)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" {
		return fmt.Errorf("tunnel: address %q: not an IP", address)
	}
	ip = ip.Unmap()
	kubelet := a.KubeletPort
	if kubelet == 0 {
		kubelet = DefaultKubeletPort
	}
	if int(port) == kubelet && (ip == netip.AddrFrom4([4]byte{127, 0, 0, 1}) || a.isNodeIP(ip)) {
		return nil
	}
	if cidrs := a.podCIDRs.Load(); cidrs != nil && slices.ContainsFunc(*cidrs, func(p netip.Prefix) bool { return p.Contains(ip) }) {
		if a.isLocal(ip) {
			return fmt.Errorf("tunnel: %s is an address of this host, not a pod", ip)
		}
		return nil
	}
	return fmt.Errorf("tunnel: %s is neither this node's kubelet nor one of its pods", address)
}

func (a *Allow) isNodeIP(ip netip.Addr) bool {
	node, ok := netip.AddrFromSlice(a.NodeIP)
	return ok && node.Unmap() == ip
}

func (a *Allow) isLocal(ip netip.Addr) bool {
	list := a.LocalAddrs
	if list == nil {
		list = net.InterfaceAddrs
	}
	addrs, err := list()
	if err != nil {
		return true // cannot tell: refuse
	}
	for _, ad := range addrs {
		var raw net.IP
		switch v := ad.(type) {
		case *net.IPNet:
			raw = v.IP
		case *net.IPAddr:
			raw = v.IP
		}
		if local, ok := netip.AddrFromSlice(raw); ok && local.Unmap() == ip {
			return true
		}
	}
	return false
}

// Dial dials address if Check allows it. It is the tunnel's local dialer:
// a refusal fails only that connection, not the session.
func (a *Allow) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	if err := a.Check(network, address); err != nil {
		return nil, err
	}
	d := &net.Dialer{Timeout: 10 * time.Second}
	return d.DialContext(ctx, network, address)
}

// Package tunnelwire is what both ends of kedge's reverse tunnel agree on
// besides the join API's route (joinapi.TunnelPath): how often the agent
// pings, and after how much silence either end declares the link dead.
package tunnelwire

import (
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// Liveness of a tunnel link, shared by both ends. The agent pings every
// PingInterval (remotedialer's own pings are every 5 s with a 60 s read
// deadline, too slow for an edge link); each end treats a link on which
// nothing arrived for DeadAfter as dead and closes it.
const (
	PingInterval = time.Second
	DeadAfter    = 4 * time.Second
)

// TuneTCP makes the kernel give up on the TCP connection under c (c may be
// a *tls.Conn) about DeadAfter after the peer stops answering: keepalive
// probes after 2 s of silence, and a user timeout for unacknowledged data.
// Used on the server, where the websocket's reads are not ours to watch.
func TuneTCP(c net.Conn) error {
	for {
		if tc, ok := c.(*net.TCPConn); ok {
			return tuneTCPConn(tc)
		}
		inner, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return fmt.Errorf("%T is not a TCP connection", c)
		}
		c = inner.NetConn()
	}
}

func tuneTCPConn(c *net.TCPConn) error {
	idle := DeadAfter / 2
	if err := c.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: idle, Interval: time.Second,
		Count: int((DeadAfter - idle) / time.Second)}); err != nil {
		return fmt.Errorf("tcp keepalive: %w", err)
	}
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var sockErr error
	if err := raw.Control(func(fd uintptr) {
		sockErr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(DeadAfter.Milliseconds()))
	}); err != nil {
		return err
	}
	if sockErr != nil {
		return fmt.Errorf("tcp user timeout: %w", sockErr)
	}
	return nil
}

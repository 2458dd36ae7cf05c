package checkconfig

import (
	"errors"
	"strings"
	"syscall"
)

// Hint is the line the agent logs when it fails on what looks like a
// missing kernel feature or host command.
const Hint = `this machine may lack a kernel feature or command kedge needs: run "kedge check-config" to see what it lacks`

// markers are lower-case fragments of the errors the node's components
// return when a kernel feature or command is missing: unknown link kinds
// and netfilter families (EOPNOTSUPP, EPROTONOSUPPORT), absent sysctls
// under /proc/sys/net, a snapshotter that did not load, a missing nft,
// unmounted cgroup controllers, failed module loads.
var markers = []string{
	"operation not supported",
	"protocol not supported",
	"address family not supported",
	"unknown filesystem type",
	"/proc/sys/net/bridge/",
	"/proc/sys/net/netfilter/",
	"modprobe",
	"snapshotter not loaded",
	`"nft": executable file not found`,
	"could not find nftables binary",
	`"iptables": executable file not found`,
	"cgroup subsystem not mounted",
	"subsystem mount for required subsystem",
	"failed to find cgroup",
}

// LooksLikeMissingKernelFeature reports whether err looks like the failure
// of a missing kernel feature or host command, so that the caller can log
// Hint. A false positive costs one log line; it never changes the error.
func LooksLikeMissingKernelFeature(err error) bool {
	if err == nil {
		return false
	}
	for _, e := range []error{syscall.EOPNOTSUPP, syscall.EPROTONOSUPPORT, syscall.EAFNOSUPPORT} {
		if errors.Is(err, e) {
			return true
		}
	}
	msg := strings.ToLower(err.Error())
	for _, m := range markers {
		if strings.Contains(msg, m) {
			return true
		}
	}
	return false
}

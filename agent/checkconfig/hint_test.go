package checkconfig

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"
)

func TestLooksLikeMissingKernelFeature(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{nil, false},
		// vxlan link without the driver: netlink returns EOPNOTSUPP, wrapped by the runner.
		{fmt.Errorf("flannel: %w", syscall.EOPNOTSUPP), true},
		// nf_tables missing: the netlink family is unknown.
		{fmt.Errorf("flannel nftables: %w", &os.SyscallError{Syscall: "socket", Err: syscall.EPROTONOSUPPORT}), true},
		{errors.New("kube-proxy stopped: open /proc/sys/net/netfilter/nf_conntrack_max: no such file or directory"), true},
		{errors.New(`kube-proxy stopped: could not run nftables command: exec: "nft": executable file not found in $PATH`), true},
		{errors.New("image-import: unpack kedge.local/pause:1: snapshotter not loaded: overlayfs: invalid argument"), true},
		{errors.New("kubelet: system validation failed - Following Cgroup subsystem not mounted: [memory]"), true},
		{errors.New("modprobe: FATAL: Module br_netfilter not found"), true},
		{errors.New("mount overlay: unknown filesystem type 'overlay'"), true},
		// Not kernel features.
		{errors.New("api-cache: listen tcp 127.0.0.1:6445: bind: address already in use"), false},
		{errors.New("flannel: not ready after 2m0s"), false},
		{fmt.Errorf("join: %w", os.ErrNotExist), false},
		{errors.New("x509: certificate signed by unknown authority"), false},
	}
	for _, c := range cases {
		if got := LooksLikeMissingKernelFeature(c.err); got != c.want {
			t.Errorf("LooksLikeMissingKernelFeature(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

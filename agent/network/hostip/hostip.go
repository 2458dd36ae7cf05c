// Package hostip finds the address a node announces to the cluster.
package hostip

import (
	"errors"
	"fmt"
	"net"

	utilnet "k8s.io/apimachinery/pkg/util/net"
)

// Detect returns the address of the interface on the default route, or else
// the first global unicast address of any interface that is up.
func Detect() (net.IP, error) {
	if ip, err := utilnet.ChooseHostInterface(); err == nil {
		return ip, nil
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("detect node IP: %w; set --node-ip", err)
	}
	for _, iface := range ifaces {
		if iface.Flags&net.FlagUp == 0 || iface.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := iface.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.IsGlobalUnicast() {
				return n.IP, nil
			}
		}
	}
	return nil, errors.New("detect node IP: no interface with a global address is up; set --node-ip")
}

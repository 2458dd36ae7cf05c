// Package cni renders and writes the node's CNI network configuration from
// the node's flannel lease: a bridge for the node's pods, addresses from
// host-local in the node's pod subnet, and portmap for hostPorts.
package cni

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/kedge/kedge/shared/atomicfile"
)

// ConfFile is the conflist kedge writes in the CNI configuration directory.
const ConfFile = "10-kedge.conflist"

// Bridge is the Linux bridge pods attach to.
const Bridge = "kedge0"

// Network is the node's share of the pod network.
type Network struct {
	// Subnet is the node's pod CIDR.
	Subnet *net.IPNet
	// MTU of pod interfaces (the overlay's MTU).
	MTU int
}

// Conflist renders the bridge + host-local + portmap network for n. The
// bridge does not masquerade: flannel's rules masquerade only traffic that
// leaves the cluster network, so pods on other nodes see pod source IPs.
func Conflist(n Network) ([]byte, error) {
	if n.Subnet == nil {
		return nil, fmt.Errorf("cni: no pod subnet")
	}
	if n.MTU <= 0 {
		return nil, fmt.Errorf("cni: MTU %d", n.MTU)
	}
	defaultRoute := "0.0.0.0/0"
	if n.Subnet.IP.To4() == nil {
		defaultRoute = "::/0"
	}
	cfg := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "kedge",
		"plugins": []any{
			map[string]any{
				"type": "bridge", "bridge": Bridge, "isGateway": true, "ipMasq": false, "hairpinMode": true,
				"mtu": n.MTU,
				"ipam": map[string]any{
					"type":   "host-local",
					"ranges": [][]map[string]string{{{"subnet": n.Subnet.String()}}},
					"routes": []map[string]string{{"dst": defaultRoute}},
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Exists reports whether confDir holds kedge's conflist (from an earlier run).
func Exists(confDir string) bool {
	_, err := os.Stat(filepath.Join(confDir, ConfFile))
	return err == nil
}

// Write renders n into confDir/ConfFile (0644) unless the file already has
// that content. It reports whether it wrote.
func Write(confDir string, n Network) (bool, error) {
	data, err := Conflist(n)
	if err != nil {
		return false, err
	}
	path := filepath.Join(confDir, ConfFile)
	if cur, err := os.ReadFile(path); err == nil && bytes.Equal(cur, data) {
		return false, nil
	}
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		return false, err
	}
	if err := atomicfile.Write(path, data, 0o644); err != nil {
		return false, fmt.Errorf("write CNI config: %w", err)
	}
	return true, nil
}

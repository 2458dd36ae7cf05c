package flannel

import (
	"encoding/json"
	"fmt"
	"net"
)

// VXLAN settings: flannel's well-known defaults, the same on every node.
const (
	VNI       = 1
	VXLANPort = 8472
)

// AnnotationPrefix is the prefix of the Node annotations flannel writes
// (public-ip, backend-data, backend-type, kube-subnet-manager).
const AnnotationPrefix = "flannel.alpha.coreos.com"

// NetConf renders flannel's net-conf.json for a single-stack cluster CIDR:
// the vxlan backend and nftables for masquerade and forward rules.
func NetConf(clusterCIDR string) ([]byte, error) {
	ip, cidr, err := net.ParseCIDR(clusterCIDR)
	if err != nil {
		return nil, fmt.Errorf("cluster CIDR %q: %w", clusterCIDR, err)
	}
	if !ip.Equal(cidr.IP) {
		return nil, fmt.Errorf("cluster CIDR %q has host bits set", clusterCIDR)
	}
	conf := map[string]any{
		"EnableNFTables": true,
		"Backend":        map[string]any{"Type": "vxlan", "VNI": VNI, "Port": VXLANPort},
	}
	if ip.To4() != nil {
		conf["Network"] = cidr.String()
	} else {
		conf["EnableIPv4"] = false
		conf["EnableIPv6"] = true
		conf["IPv6Network"] = cidr.String()
	}
	b, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

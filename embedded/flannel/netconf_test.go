package flannel

import (
	"net"
	"strings"
	"testing"

	"github.com/flannel-io/flannel/pkg/subnet"

	"github.com/kedge/kedge/scripts/testenv"
)

func TestNetConfGolden(t *testing.T) {
	for cidr, file := range map[string]string{"10.42.0.0/16": "net-conf.json", "fd00:42::/56": "net-conf-ipv6.json"} {
		got, err := NetConf(cidr)
		if err != nil {
			t.Fatal(err)
		}
		testenv.Golden(t, file, got)
		// flannel reads it the way we mean it.
		sc, err := subnet.ParseConfig(string(got))
		if err != nil {
			t.Fatal(err)
		}
		v6 := strings.Contains(cidr, ":")
		if sc.BackendType != "vxlan" || !sc.EnableNFTables || sc.EnableIPv4 == v6 || sc.EnableIPv6 != v6 {
			t.Fatalf("%s: parsed as %+v", cidr, sc)
		}
		if got := sc.Network.String(); !v6 && got != cidr {
			t.Fatalf("network = %s, want %s", got, cidr)
		}
		if got := sc.IPv6Network.String(); v6 && got != cidr {
			t.Fatalf("ipv6 network = %s, want %s", got, cidr)
		}
	}
}

func TestNetConfRejects(t *testing.T) {
	for _, bad := range []string{"", "10.42.0.0", "10.42.0.1/16", "10.42.0.0/16,fd00:42::/56"} {
		if _, err := NetConf(bad); err == nil {
			t.Errorf("NetConf(%q) accepted", bad)
		}
	}
}

func TestRunRefusesMixedFamilies(t *testing.T) {
	f := &Flannel{NodeIP: net.ParseIP("192.0.2.10"), ClusterCIDR: "fd00:42::/56"}
	err := f.Run(t.Context(), func() { t.Error("ready") })
	if err == nil || !strings.Contains(err.Error(), "different IP families") {
		t.Fatalf("err = %v", err)
	}
}

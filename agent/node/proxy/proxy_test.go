package proxy

import (
	"slices"
	"testing"
)

func TestArgs(t *testing.T) {
	args := Args(Inputs{NodeName: "edge-1", Kubeconfig: "/k", ClusterCIDR: "10.42.0.0/16", ExtraArgs: []string{"proxy-mode=iptables", "--v=2"}})
	for _, want := range []string{"--proxy-mode=iptables", "--v=2", "--hostname-override=edge-1", "--cluster-cidr=10.42.0.0/16", "--conntrack-max-per-core=0", "--detect-local-mode=ClusterCIDR"} {
		if !slices.Contains(args, want) {
			t.Errorf("args %v lack %s", args, want)
		}
	}
	if !slices.Contains(Args(Inputs{}), "--proxy-mode=nftables") {
		t.Error("nftables is not the default mode")
	}
	if !slices.IsSorted(args) {
		t.Error("args not sorted")
	}
}

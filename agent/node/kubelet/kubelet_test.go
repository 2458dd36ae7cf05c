package kubelet

import (
	"slices"
	"strings"
	"testing"

	"github.com/kedge/kedge/scripts/testenv"
)

func inputs() Inputs {
	return Inputs{
		NodeName: "edge-1", NodeIP: "192.0.2.21", Kubeconfig: "/k/kubelet.kubeconfig",
		ClientCAFile: "/k/client-ca.crt", ServingCert: "/k/serving.crt", ServingKey: "/k/serving.key",
		ContainerdSocket: "/run/kedge/containerd/containerd.sock", ClusterDNS: "10.43.0.10", ClusterDomain: "cluster.local",
		RootDir: "/var/lib/kubelet", ResolvConf: "/etc/resolv.conf",
		Labels: []string{"site=shop-12", "tier=edge"}, Taints: []Taint{{Key: "edge", Value: "true", Effect: "NoSchedule"}},
		CgroupV1: true,
	}
}

func TestConfigGolden(t *testing.T) {
	got, err := Config(inputs())
	if err != nil {
		t.Fatal(err)
	}
	testenv.Golden(t, "kubelet-config.yaml", got)
}

func TestFailCgroupV1OnlyOffOnV1Hosts(t *testing.T) {
	in := inputs()
	in.CgroupV1 = false
	got, _ := Config(in)
	if !strings.Contains(string(got), "failCgroupV1: true") {
		t.Fatalf("v2 host should keep failCgroupV1 true:\n%s", got)
	}
}

func TestArgsOverrides(t *testing.T) {
	in := inputs()
	in.ExtraArgs = []string{"--node-ip=198.51.100.7", "v=2"}
	args := Args(in)
	for _, want := range []string{"--node-ip=198.51.100.7", "--v=2", "--node-labels=site=shop-12,tier=edge", "--hostname-override=edge-1", "--cloud-provider=external"} {
		if !slices.Contains(args, want) {
			t.Errorf("args %v lack %s", args, want)
		}
	}
}

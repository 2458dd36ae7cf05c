package cni

import (
	"encoding/json"
	"testing"
)

func TestConflist(t *testing.T) {
	for cidr, route := range map[string]string{"10.42.3.0/24": "0.0.0.0/0", "fd00:42:0:3::/64": "::/0"} {
		b, err := Conflist(cidr)
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Plugins []struct {
				Type string
				IPAM struct {
					Ranges [][]struct{ Subnet string }
					Routes []struct{ Dst string }
				}
			}
		}
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if len(got.Plugins) != 2 || got.Plugins[0].Type != "bridge" || got.Plugins[1].Type != "portmap" {
			t.Fatalf("plugins = %+v", got.Plugins)
		}
		if got.Plugins[0].IPAM.Ranges[0][0].Subnet != cidr || got.Plugins[0].IPAM.Routes[0].Dst != route {
			t.Fatalf("%s: ipam = %+v", cidr, got.Plugins[0].IPAM)
		}
	}
}

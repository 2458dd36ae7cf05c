package deploy

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestSubstitute(t *testing.T) {
	v := Variables{ClusterDNS: "10.43.0.10", ClusterDomain: "cluster.local", ServerCA: []byte("-----BEGIN CERTIFICATE-----\nx\n")}
	tests := []struct {
		name, in, want, err string
	}{
		{"none", "a: b\n", "a: b\n", ""},
		{"all", "ip: %{CLUSTER_DNS}%\ndomain: %{CLUSTER_DOMAIN}%\nca: %{SERVER_CA_BASE64}%\n",
			"ip: 10.43.0.10\ndomain: cluster.local\nca: " + base64.StdEncoding.EncodeToString(v.ServerCA) + "\n", ""},
		{"twice in a string", `"%{CLUSTER_DOMAIN}%.%{CLUSTER_DOMAIN}%"`, `"cluster.local.cluster.local"`, ""},
		{"not a variable", "a: %{ not }% %CLUSTER_DNS% {CLUSTER_DNS}", "a: %{ not }% %CLUSTER_DNS% {CLUSTER_DNS}", ""},
		{"unknown", "a: b\nc: %{CLUSTER_CIDR}%\n", "", "line 2: unknown variable %{CLUSTER_CIDR}% (known: %{CLUSTER_DNS}%, %{CLUSTER_DOMAIN}%, %{SERVER_CA_BASE64}%)"},
		{"lower case is unknown", "%{cluster_dns}%", "", "line 1: unknown variable %{cluster_dns}%"},
		{"empty name", "%{}%", "", "line 1: unknown variable %{}%"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Substitute([]byte(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

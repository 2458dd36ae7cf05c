package cni

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/kedge/kedge/scripts/testenv"
)

func network(t *testing.T, cidr string, mtu int) Network {
	t.Helper()
	_, subnet, err := net.ParseCIDR(cidr)
	if err != nil {
		t.Fatal(err)
	}
	return Network{Subnet: subnet, MTU: mtu}
}

func TestConflistGolden(t *testing.T) {
	for cidr, file := range map[string]string{"10.42.3.0/24": "10-kedge.conflist", "fd00:42:0:3::/64": "10-kedge-ipv6.conflist"} {
		got, err := Conflist(network(t, cidr, 1450))
		if err != nil {
			t.Fatal(err)
		}
		testenv.Golden(t, file, got)
	}
}

func TestConflistRejects(t *testing.T) {
	if _, err := Conflist(Network{MTU: 1450}); err == nil {
		t.Error("no subnet accepted")
	}
	if _, err := Conflist(network(t, "10.42.3.0/24", 0)); err == nil {
		t.Error("MTU 0 accepted")
	}
}

func TestWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "net.d")
	if Exists(dir) {
		t.Fatal("conflist exists in an empty dir")
	}
	n := network(t, "10.42.3.0/24", 1450)
	for i, want := range []bool{true, false} {
		wrote, err := Write(dir, n)
		if err != nil || wrote != want {
			t.Fatalf("write %d: wrote=%v err=%v, want wrote=%v", i, wrote, err, want)
		}
	}
	if !Exists(dir) {
		t.Fatal("no conflist after Write")
	}
	if wrote, err := Write(dir, network(t, "10.42.4.0/24", 1450)); err != nil || !wrote {
		t.Fatalf("changed subnet not written: %v %v", wrote, err)
	}
	st, err := os.Stat(filepath.Join(dir, ConfFile))
	if err != nil || st.Mode().Perm() != 0o644 {
		t.Fatalf("conflist mode: %v %v", st, err)
	}
}

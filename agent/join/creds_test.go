package join

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kedge/kedge/shared/joinapi"
)

// certsOf is a complete set of credentials from c's files.
func certsOf(t *testing.T, c *cluster) *Certs {
	t.Helper()
	read := func(path string) []byte {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	f := c.files
	return &Certs{
		KubeletClientCert: read(f.KubeletClientCert), KubeletClientKey: read(f.KubeletKey),
		KubeletServingCert: read(f.ServingCert), KubeletServingKey: read(f.ServingKey),
		KubeProxyCert: read(f.AdminCert), KubeProxyKey: read(f.AdminKey),
		ServerCA: c.caPEM, ClientCA: read(f.ClientCA),
		Cluster: joinapi.Cluster{ClusterDNS: "10.43.0.10", ClusterDomain: "cluster.local", ClusterCIDR: "10.42.0.0/16", ServiceCIDR: "10.43.0.0/16"},
	}
}

func TestSaveThenUsable(t *testing.T) {
	certs := certsOf(t, newCluster(t, time.Time{}))
	dir := filepath.Join(t.TempDir(), "creds")
	if err := certs.Save(dir); err != nil {
		t.Fatal(err)
	}
	if err := Usable(dir); err != nil {
		t.Fatalf("Usable after Save: %v", err)
	}
	got, err := LoadCluster(dir)
	if err != nil || got != certs.Cluster {
		t.Errorf("LoadCluster = %+v, %v; want %+v", got, err, certs.Cluster)
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("credentials dir: %v, %v; want 0700", st.Mode(), err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if info, err := e.Info(); err != nil || info.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, want 0600", e.Name(), info.Mode())
		}
	}
	// Saving again (a rejoin) replaces the files in place.
	certs.Cluster.ClusterDNS = "10.43.0.53"
	if err := certs.Save(dir); err != nil {
		t.Fatal(err)
	}
	if got, _ := LoadCluster(dir); got.ClusterDNS != "10.43.0.53" {
		t.Errorf("after saving again: %+v", got)
	}
}

func TestUsableRefuses(t *testing.T) {
	fresh := certsOf(t, newCluster(t, time.Time{}))
	// Issued a year less 12 hours ago: the leaves expire within a day.
	old := certsOf(t, newCluster(t, time.Now().Add(-365*24*time.Hour+12*time.Hour)))
	for _, tc := range []struct {
		name  string
		certs *Certs
		spoil func(dir string) error
		want  string
	}{
		{"a key missing", fresh, func(dir string) error { return os.Remove(filepath.Join(dir, KubeProxyKey)) }, KubeProxyKey},
		{"the cluster facts missing", fresh, func(dir string) error { return os.Remove(filepath.Join(dir, ClusterInfo)) }, ClusterInfo},
		{"a certificate that is not one", fresh, func(dir string) error {
			return os.WriteFile(filepath.Join(dir, KubeletServingCert), []byte("garbage"), 0o600)
		}, KubeletServingCert},
		{"certificates about to expire", old, func(string) error { return nil }, "expires at"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := tc.certs.Save(dir); err != nil {
				t.Fatal(err)
			}
			if err := tc.spoil(dir); err != nil {
				t.Fatal(err)
			}
			if err := Usable(dir); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Usable = %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

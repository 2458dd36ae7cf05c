package kubeconfig

import (
	"os"
	"path/filepath"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

func TestWriteEmbedded(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"ca.crt": "CA", "c.crt": "CERT", "c.key": "KEY"} {
		os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600)
	}
	path := filepath.Join(dir, "etc", "kedge.yaml")
	spec := Spec{Server: "https://127.0.0.1:6443", CAFile: filepath.Join(dir, "ca.crt"),
		CertFile: filepath.Join(dir, "c.crt"), KeyFile: filepath.Join(dir, "c.key"), Embed: true}
	if err := Write(path, spec, 0o640); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v", st.Mode().Perm())
	}
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	cluster, user := cfg.Clusters[ctx.Cluster], cfg.AuthInfos[ctx.AuthInfo]
	if cluster.Server != spec.Server || string(cluster.CertificateAuthorityData) != "CA" ||
		string(user.ClientCertificateData) != "CERT" || string(user.ClientKeyData) != "KEY" || user.ClientKey != "" {
		t.Fatalf("kubeconfig = %+v %+v", cluster, user)
	}
}

func TestWriteReferencesAndMissingFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.kubeconfig")
	if err := Write(path, Spec{Server: "https://x", CAFile: "/ca", CertFile: "/c", KeyFile: "/k"}, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil || cfg.AuthInfos["kedge"].ClientKey != "/k" {
		t.Fatalf("%+v %v", cfg, err)
	}
	if err := Write(path, Spec{Server: "https://x", CAFile: "/nonexistent", Embed: true}, 0o600); err == nil {
		t.Fatal("embedding a missing CA succeeded")
	}
}

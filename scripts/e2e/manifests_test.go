package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kedge/kedge/scripts/e2e/hosts"
	"github.com/kedge/kedge/server/controllers/deploy"
	"github.com/kedge/kedge/server/integration/harness"
)

// TestManifestsDirectory drops manifests into a running server's
// /var/lib/kedge/server/manifests: their objects appear, change when the
// file is edited and go when it is deleted; a broken file is reported (log
// and Event) while the other files stay applied and keep applying.
func TestManifestsDirectory(t *testing.T) {
	kedge := harness.Binary(t)
	net := hosts.NewNetwork(t)
	h := net.AddHost(t, "manifests")
	srv, _ := startServer(t, kedge, h, "--disable-agent")
	procs := []*hosts.Proc{srv}
	admin := adminClient(t, h)
	ctx := t.Context()
	dir := filepath.Join(h.Root, "var/lib/kedge/server/manifests")
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("manifests dir %s: %v", dir, err)
	}
	drop := func(name, data string) {
		t.Helper()
		tmp := filepath.Join(dir, "."+name+".part")
		if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	configMap := func(ns, name, key string) (string, error) {
		cm, err := admin.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return "", err
		}
		return cm.Data[key], nil
	}
	waitValue := func(ns, name, key, want string) {
		t.Helper()
		var got string
		var err error
		waitFor(t, 60*time.Second, fmt.Sprintf("ConfigMap %s/%s %s=%s", ns, name, key, want), procs, func() bool {
			got, err = configMap(ns, name, key)
			return err == nil && got == want
		})
	}

	start := time.Now()
	drop("shop.yaml", shopManifest("v1"))
	waitValue("shop", "settings", "release", "v1")
	waitValue("shop", "settings", "dns", "10.43.0.10")
	t.Logf("dropped manifest applied after %.1fs", time.Since(start).Seconds())
	waitFor(t, 30*time.Second, "Deployment shop/web", procs, func() bool {
		d, err := admin.AppsV1().Deployments("shop").Get(ctx, "web", metav1.GetOptions{})
		return err == nil && *d.Spec.Replicas == 2
	})

	start = time.Now()
	drop("shop.yaml", strings.Replace(shopManifest("v2"), "replicas: 2", "replicas: 1", 1))
	waitValue("shop", "settings", "release", "v2")
	waitFor(t, 30*time.Second, "Deployment shop/web scaled to 1 by the edit", procs, func() bool {
		d, err := admin.AppsV1().Deployments("shop").Get(ctx, "web", metav1.GetOptions{})
		return err == nil && *d.Spec.Replicas == 1
	})
	t.Logf("edited manifest applied after %.1fs", time.Since(start).Seconds())

	drop("broken.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: broken\n  namespace: shop\ndata: [oops\n")
	waitFor(t, 60*time.Second, "a ManifestInvalid Event about broken.yaml", procs, func() bool {
		evs, err := admin.CoreV1().Events("kube-system").List(ctx, metav1.ListOptions{FieldSelector: "reason=" + deploy.ReasonInvalid})
		if err != nil {
			return false
		}
		for _, ev := range evs.Items {
			if strings.HasPrefix(ev.Message, "broken.yaml:") && ev.Type == "Warning" {
				return true
			}
		}
		return false
	})
	if !strings.Contains(srv.Output(), "file=broken.yaml") {
		t.Errorf("the server log does not name broken.yaml:\n%s", srv.Output())
	}
	// The others stay applied and keep applying.
	if v, err := configMap("shop", "settings", "release"); err != nil || v != "v2" {
		t.Fatalf("after a broken file, shop/settings release=%q (%v), want v2", v, err)
	}
	drop("later.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: later, namespace: shop}\ndata: {k: v}\n")
	waitValue("shop", "later", "k", "v")
	drop("shop.yaml", shopManifest("v3"))
	waitValue("shop", "settings", "release", "v3")
	if _, err := admin.CoreV1().ConfigMaps("shop").Get(ctx, "broken", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("ConfigMap of the broken file: %v, want not found", err)
	}

	if err := os.Remove(filepath.Join(dir, "later.yaml")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the deleted file's ConfigMap to go", procs, func() bool {
		_, err := configMap("shop", "later", "k")
		return apierrors.IsNotFound(err)
	})
}

func shopManifest(release string) string {
	return `apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
data:
  release: ` + release + `
  dns: "%{CLUSTER_DNS}%"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: kedge/testimage
`
}

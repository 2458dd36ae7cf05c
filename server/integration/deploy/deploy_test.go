// Package deploy checks the manifest deployer on a real server: the
// server's own deployer on <data-dir>/server/manifests (apply, change,
// removal, a broken file and its Event), and a second deployer run by the
// test on packaged files (staging, .skip, --disable, a second server's
// records). One in-process server per test binary: the scheduler registers
// process-wide state.
package deploy

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kedge/kedge/scripts/testenv"
	"github.com/kedge/kedge/server/controllers/deploy"
	"github.com/kedge/kedge/server/integration/harness"
)

const wait = 60 * time.Second

func TestManifests(t *testing.T) {
	dataDir := t.TempDir()
	c := harness.NewConfig(t, dataDir)
	srv := harness.StartInProcess(t, c)
	cs := srv.Client
	rc, err := clientcmd.BuildConfigFromFlags("", c.WriteKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	dyn := dynamic.NewForConfigOrDie(rc)
	dir := filepath.Join(dataDir, "server", "manifests")
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("manifests dir not staged: %v", err)
	}

	t.Run("server applies, changes and removes", func(t *testing.T) {
		ctx := t.Context()
		write(t, dir, "app.yaml", appV1)
		write(t, dir, "other.yaml", other)
		waitConfigMap(t, cs, "deploy-test", "settings", "domain", "cluster.local")
		waitConfigMap(t, cs, "deploy-test", "extra", "k", "v")
		waitConfigMap(t, cs, "deploy-test", "other", "k", "v")
		// A custom resource of a CRD applied in the same file.
		widgets := schema.GroupVersionResource{Group: "test.kedge.io", Version: "v1", Resource: "widgets"}
		harness.WaitFor(t, wait, "the custom resource", func() error {
			_, err := dyn.Resource(widgets).Namespace("deploy-test").Get(ctx, "w1", metav1.GetOptions{})
			return err
		})
		waitEvent(t, cs, "app.yaml", deploy.ReasonApplied)
		// The CRD and its custom resource applied in one pass: no failure.
		if evs, err := cs.CoreV1().Events(deploy.RecordNamespace).List(ctx, metav1.ListOptions{FieldSelector: "reason=" + deploy.ReasonApplyFailed}); err != nil || len(evs.Items) > 0 {
			t.Fatalf("apply failures = %v (%v), want none", evs, err)
		}

		write(t, dir, "app.yaml", appV2)
		waitConfigMap(t, cs, "deploy-test", "settings", "domain", "changed")
		waitGone(t, "ConfigMap extra removed from the file", func() error {
			_, err := cs.CoreV1().ConfigMaps("deploy-test").Get(ctx, "extra", metav1.GetOptions{})
			return err
		})
		waitGone(t, "Widget w1 removed from the file", func() error {
			_, err := dyn.Resource(widgets).Namespace("deploy-test").Get(ctx, "w1", metav1.GetOptions{})
			return err
		})
		// The field manager removed the field dropped from the file.
		cm, err := cs.CoreV1().ConfigMaps("deploy-test").Get(ctx, "settings", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := cm.Data["old"]; ok {
			t.Fatalf("field removed from the file is still set: %v", cm.Data)
		}

		if err := os.Remove(filepath.Join(dir, "other.yaml")); err != nil {
			t.Fatal(err)
		}
		waitGone(t, "the objects of a deleted file", func() error {
			_, err := cs.CoreV1().ConfigMaps("deploy-test").Get(ctx, "other", metav1.GetOptions{})
			return err
		})
		waitGone(t, "the record of a deleted file", func() error {
			_, err := cs.CoreV1().ConfigMaps(deploy.RecordNamespace).Get(ctx, deploy.RecordName(c.NodeName, "other.yaml"), metav1.GetOptions{})
			return err
		})
	})

	t.Run("broken file is reported and the others stay", func(t *testing.T) {
		ctx := t.Context()
		write(t, dir, "broken.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: half}\n---\nkind: [unclosed\n")
		write(t, dir, "unknown-var.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: uv, namespace: deploy-test}\ndata: {a: \"%{NOPE}%\"}\n")
		ev := waitEvent(t, cs, "broken.yaml", deploy.ReasonInvalid)
		if ev.Type != corev1.EventTypeWarning || !strings.Contains(ev.Message, "document 2") {
			t.Fatalf("event = %s %q, want a Warning naming document 2", ev.Type, ev.Message)
		}
		ev = waitEvent(t, cs, "unknown-var.yaml", deploy.ReasonInvalid)
		if !strings.Contains(ev.Message, "unknown variable %{NOPE}%") {
			t.Fatalf("event message = %q", ev.Message)
		}
		rec, err := cs.CoreV1().ConfigMaps(deploy.RecordNamespace).Get(ctx, deploy.RecordName(c.NodeName, "broken.yaml"), metav1.GetOptions{})
		if err != nil || rec.Annotations[deploy.ErrorAnnotation] == "" {
			t.Fatalf("record of the broken file: %v %v", rec.Annotations, err)
		}
		if _, err := cs.CoreV1().ConfigMaps("default").Get(ctx, "half", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("an object of a broken file was applied: %v", err)
		}
		// The other files still apply and change.
		write(t, dir, "app.yaml", strings.Replace(appV2, "changed", "changed-again", 1))
		waitConfigMap(t, cs, "deploy-test", "settings", "domain", "changed-again")

		// A file that was fine and breaks keeps what it applied.
		write(t, dir, "app.yaml", appV2+"---\nkind: [\n")
		waitEvent(t, cs, "app.yaml", deploy.ReasonInvalid)
		if _, err := cs.CoreV1().ConfigMaps("deploy-test").Get(ctx, "settings", metav1.GetOptions{}); err != nil {
			t.Fatalf("a file that broke lost its objects: %v", err)
		}
		// Fixed, it applies again.
		write(t, dir, "broken.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: half}\ndata: {fixed: \"yes\"}\n")
		waitConfigMap(t, cs, "default", "half", "fixed", "yes")
		harness.WaitFor(t, wait, "the error annotation to go", func() error {
			rec, err := cs.CoreV1().ConfigMaps(deploy.RecordNamespace).Get(ctx, deploy.RecordName(c.NodeName, "broken.yaml"), metav1.GetOptions{})
			if err != nil {
				return err
			}
			if e := rec.Annotations[deploy.ErrorAnnotation]; e != "" {
				return fmt.Errorf("error annotation %q", e)
			}
			return nil
		})
	})

	t.Run("failing object is retried", func(t *testing.T) {
		// The namespace does not exist yet: the apply fails until it does.
		write(t, dir, "late.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: late, namespace: made-later}\ndata: {k: v}\n")
		waitEvent(t, cs, "late.yaml", deploy.ReasonApplyFailed)
		if _, err := cs.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "made-later"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitConfigMap(t, cs, "made-later", "late", "k", "v")
	})

	t.Run("packaged files, skip, disable and a second server", func(t *testing.T) {
		ctx := t.Context()
		dir2 := filepath.Join(t.TempDir(), "manifests")
		packaged := map[string][]byte{
			"coredns.yaml":        []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: pkg-dns, namespace: deploy-test}\ndata: {ip: \"%{CLUSTER_DNS}%\"}\n"),
			"metrics-server.yaml": []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: pkg-metrics, namespace: deploy-test}\ndata: {v: packaged}\n"),
		}
		disabled := map[string]bool{}
		// Each run is one "start" of a second server named server-2.
		start := func() (stop func()) {
			t.Helper()
			if err := deploy.Stage(dir2, packaged, func(a string) bool { return disabled[a] }); err != nil {
				t.Fatal(err)
			}
			d := &deploy.Deployer{Dir: dir2, Server: "server-2", Vars: deploy.Variables{ClusterDNS: "10.43.0.10", ClusterDomain: "cluster.local"},
				Ignore: func(f string) bool { return disabled[deploy.AddonName(f)] },
				Client: cs, Dynamic: dyn, Interval: 500 * time.Millisecond, Log: testLogger(t)}
			r := testenv.Start(t, d.Run)
			return func() {
				if err := r.Stop(); err != nil {
					t.Errorf("deployer: %v", err)
				}
			}
		}
		stop := start()
		waitConfigMap(t, cs, "deploy-test", "pkg-dns", "ip", "10.43.0.10")
		waitConfigMap(t, cs, "deploy-test", "pkg-metrics", "v", "packaged")

		// An edit with .skip survives a restart; one without does not.
		write(t, dir2, "metrics-server.yaml", strings.Replace(string(packaged["metrics-server.yaml"]), "packaged", "edited", 1))
		write(t, dir2, "metrics-server.yaml.skip", "")
		write(t, dir2, "coredns.yaml", strings.Replace(string(packaged["coredns.yaml"]), "%{CLUSTER_DNS}%", "edited", 1))
		waitConfigMap(t, cs, "deploy-test", "pkg-metrics", "v", "edited")
		waitConfigMap(t, cs, "deploy-test", "pkg-dns", "ip", "edited")
		stop()
		stop = start()
		waitConfigMap(t, cs, "deploy-test", "pkg-dns", "ip", "10.43.0.10")
		waitConfigMap(t, cs, "deploy-test", "pkg-metrics", "v", "edited")

		// The same object in the first server's directory: it stays when
		// server-2 drops it (disables coredns), and goes when neither has it.
		write(t, dir, "shared.yaml", string(packaged["coredns.yaml"]))
		harness.WaitFor(t, wait, "the first server's record of shared.yaml", func() error {
			_, err := cs.CoreV1().ConfigMaps(deploy.RecordNamespace).Get(ctx, deploy.RecordName(c.NodeName, "shared.yaml"), metav1.GetOptions{})
			return err
		})
		stop()
		disabled["coredns"] = true
		stop = start()
		defer func() { stop() }()
		if _, err := os.Stat(filepath.Join(dir2, "coredns.yaml")); !os.IsNotExist(err) {
			t.Fatalf("staged file of a disabled add-on is still there: %v", err)
		}
		harness.WaitFor(t, wait, "server-2 to forget coredns.yaml", func() error {
			_, err := cs.CoreV1().ConfigMaps(deploy.RecordNamespace).Get(ctx, deploy.RecordName("server-2", "coredns.yaml"), metav1.GetOptions{})
			if err == nil {
				return fmt.Errorf("record still there")
			}
			return nil
		})
		if _, err := cs.CoreV1().ConfigMaps("deploy-test").Get(ctx, "pkg-dns", metav1.GetOptions{}); err != nil {
			t.Fatalf("an object another server still has was deleted: %v", err)
		}
		if err := os.Remove(filepath.Join(dir, "shared.yaml")); err != nil {
			t.Fatal(err)
		}
		waitGone(t, "the disabled add-on's object once no server has it", func() error {
			_, err := cs.CoreV1().ConfigMaps("deploy-test").Get(ctx, "pkg-dns", metav1.GetOptions{})
			return err
		})

		// Disabling an add-on whose edit is kept by .skip removes its
		// objects but not the user's file.
		stop()
		disabled["metrics-server"] = true
		stop = start()
		waitGone(t, "the objects of disabled metrics-server", func() error {
			_, err := cs.CoreV1().ConfigMaps("deploy-test").Get(ctx, "pkg-metrics", metav1.GetOptions{})
			return err
		})
		if _, err := os.Stat(filepath.Join(dir2, "metrics-server.yaml")); err != nil {
			t.Fatalf("the user's edited file kept by .skip: %v", err)
		}
	})

	t.Run("restart with --disable removes the add-on", func(t *testing.T) {
		ctx := t.Context()
		// A file named like a packaged add-on (the packaged one, if there
		// is one, is overwritten here and would be removed by staging).
		write(t, dir, "coredns.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: flag-dns, namespace: deploy-test}\ndata: {k: v}\n")
		waitConfigMap(t, cs, "deploy-test", "flag-dns", "k", "v")
		srv.Stop(t)
		c.Disable = []string{"coredns"}
		srv = harness.StartBinary(t, c)
		cs = srv.Client
		waitGone(t, "the objects of the disabled add-on", func() error {
			_, err := cs.CoreV1().ConfigMaps("deploy-test").Get(ctx, "flag-dns", metav1.GetOptions{})
			return err
		})
		waitGone(t, "the record of the disabled add-on", func() error {
			_, err := cs.CoreV1().ConfigMaps(deploy.RecordNamespace).Get(ctx, deploy.RecordName(c.NodeName, "coredns.yaml"), metav1.GetOptions{})
			return err
		})
		// The other files are applied again at the start.
		waitConfigMap(t, cs, "deploy-test", "settings", "domain", "changed-again")
		waitConfigMap(t, cs, "default", "half", "fixed", "yes")
	})
}

const appV1 = `apiVersion: v1
kind: Namespace
metadata:
  name: deploy-test
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: deploy-test
data:
  domain: "%{CLUSTER_DOMAIN}%"
  old: "yes"
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: extra
  namespace: deploy-test
data:
  k: v
---
apiVersion: test.kedge.io/v1
kind: Widget
metadata:
  name: w1
  namespace: deploy-test
spec:
  size: 3
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.test.kedge.io
spec:
  group: test.kedge.io
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
`

const appV2 = `apiVersion: v1
kind: Namespace
metadata:
  name: deploy-test
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: deploy-test
data:
  domain: changed
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.test.kedge.io
spec:
  group: test.kedge.io
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
`

const other = `apiVersion: v1
kind: ConfigMap
metadata:
  name: other
  namespace: deploy-test
data:
  k: v
`

func write(t *testing.T, dir, name, data string) {
	t.Helper()
	// Write and rename, as an editor or `cp` onto a new name would, so the
	// poller never reads half a file.
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

func waitConfigMap(t *testing.T, cs kubernetes.Interface, ns, name, key, want string) {
	t.Helper()
	harness.WaitFor(t, wait, fmt.Sprintf("ConfigMap %s/%s %s=%s", ns, name, key, want), func() error {
		cm, err := cs.CoreV1().ConfigMaps(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got := cm.Data[key]; got != want {
			return fmt.Errorf("%s=%q", key, got)
		}
		return nil
	})
}

func waitGone(t *testing.T, what string, get func() error) {
	t.Helper()
	harness.WaitFor(t, wait, what, func() error {
		if err := get(); !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there (%v)", err)
		}
		return nil
	})
}

// waitEvent waits for an Event with reason about file (of the first server)
// and returns the newest.
func waitEvent(t *testing.T, cs kubernetes.Interface, file, reason string) corev1.Event {
	t.Helper()
	var found corev1.Event
	harness.WaitFor(t, wait, fmt.Sprintf("a %s event about %s", reason, file), func() error {
		list, err := cs.CoreV1().Events(deploy.RecordNamespace).List(context.Background(), metav1.ListOptions{FieldSelector: "reason=" + reason})
		if err != nil {
			return err
		}
		for _, ev := range list.Items {
			if strings.HasPrefix(ev.Message, file+":") && ev.InvolvedObject.Name == deploy.RecordName("kedge-test", file) {
				found = ev
				return nil
			}
		}
		return fmt.Errorf("%d %s events, none about %s", len(list.Items), reason, file)
	})
	return found
}

func testLogger(t *testing.T) *slog.Logger { return slog.New(slog.NewTextHandler(t.Output(), nil)) }

package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"github.com/kedge/kedge/server/config"
)

// ExerciseControlPlane is the datastore-independent integration scenario:
// it starts a server in-process on a fresh data dir, creates a namespace, a
// ConfigMap and a Deployment with client-go, checks a watch and the
// controller-manager's work, stops the server, starts the kedge binary on the
// same data dir and checks every object, the CA and `kedge kubectl`.
//
// The restart runs the binary because upstream kube-controller-manager 1.37
// never releases its process-global informer name, so a second
// controller-manager cannot start in the same process.
func ExerciseControlPlane(t *testing.T, mutate func(*config.Config)) {
	ctx := t.Context()
	dataDir := t.TempDir()
	c := NewConfig(t, dataDir)
	mutate(&c)
	srv := StartInProcess(t, c)
	cs := srv.Client

	ns, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "edge"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm, err := cs.CoreV1().ConfigMaps("edge").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "settings"},
		Data:       map[string]string{"mode": "offline"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	w, err := cs.CoreV1().ConfigMaps("edge").Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=settings", ResourceVersion: cm.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["mode"] = "online"
	if _, err := cs.CoreV1().ConfigMaps("edge").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-w.ResultChan():
		got, ok := ev.Object.(*corev1.ConfigMap)
		if ev.Type != watch.Modified || !ok || got.Data["mode"] != "online" {
			t.Fatalf("watch event = %s %+v, want Modified with mode=online", ev.Type, ev.Object)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("watch saw no change within 30s")
	}
	w.Stop()

	labels := map[string]string{"app": "web"}
	_, err = cs.AppsV1().Deployments("edge").Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "kedge/testimage"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	WaitFor(t, 60*time.Second, "3 pending pods from the Deployment's ReplicaSet", func() error {
		rs, err := cs.AppsV1().ReplicaSets("edge").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil || len(rs.Items) != 1 {
			return fmt.Errorf("replicasets: %v, %v", len(rs.Items), err)
		}
		pods, err := cs.CoreV1().Pods("edge").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil || len(pods.Items) != 3 {
			return fmt.Errorf("pods: %d, %v", len(pods.Items), err)
		}
		for _, p := range pods.Items {
			if p.Status.Phase != corev1.PodPending {
				return fmt.Errorf("pod %s is %s", p.Name, p.Status.Phase)
			}
		}
		return nil
	})

	caBefore := readFile(t, filepath.Join(dataDir, "server/tls/server-ca.crt"))
	tokenBefore := readFile(t, filepath.Join(dataDir, "server/token"))
	srv.Stop(t)

	srv = StartBinary(t, c)
	cs = srv.Client
	if got := readFile(t, filepath.Join(dataDir, "server/tls/server-ca.crt")); got != caBefore {
		t.Fatal("server CA changed across restart")
	}
	if got := readFile(t, filepath.Join(dataDir, "server/token")); got != tokenBefore {
		t.Fatal("server token changed across restart")
	}
	if got, err := cs.CoreV1().Namespaces().Get(ctx, "edge", metav1.GetOptions{}); err != nil || got.UID != ns.UID {
		t.Fatalf("namespace after restart: %v", err)
	}
	got, err := cs.CoreV1().ConfigMaps("edge").Get(ctx, "settings", metav1.GetOptions{})
	if err != nil || got.Data["mode"] != "online" {
		t.Fatalf("configmap after restart: %+v, %v", got, err)
	}
	if _, err := cs.AppsV1().Deployments("edge").Get(ctx, "web", metav1.GetOptions{}); err != nil {
		t.Fatalf("deployment after restart: %v", err)
	}
	pods, err := cs.CoreV1().Pods("edge").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil || len(pods.Items) != 3 {
		t.Fatalf("pods after restart: %d, %v", len(pods.Items), err)
	}

	out, err := exec.CommandContext(ctx, Binary(t), "kubectl", "--kubeconfig", c.WriteKubeconfig,
		"get", "configmap", "settings", "-n", "edge", "-o", "jsonpath={.data.mode}").CombinedOutput()
	if err != nil || string(out) != "online" {
		t.Fatalf("kedge kubectl: %q, %v", out, err)
	}
	// With no flags, kedge kubectl uses $KUBECONFIG.
	cmd := exec.CommandContext(ctx, Binary(t), "kubectl", "get", "deployment", "web", "-n", "edge", "-o", "name")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.WriteKubeconfig)
	if out, err := cmd.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "deployment.apps/web" {
		t.Fatalf("kedge kubectl with $KUBECONFIG: %q, %v", out, err)
	}
	srv.Stop(t)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

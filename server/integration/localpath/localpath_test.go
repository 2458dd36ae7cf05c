// Package localpath checks kedge's local-path volumes on a real server:
// the packaged StorageClass is the default, the server's provisioner
// creates a volume on the node the scheduler selected, the upstream PV
// controller binds it, and the node's agent side (with the node's own
// credentials, so the RBAC is real) creates its directory and, once the
// claim is deleted, removes the directory and the volume, leaving alone a
// released volume whose path is not its own; the admission policy keeps
// a node from deleting another node's volumes, and a claim for a node that
// publishes no storage directory gets a Warning event. The scheduler's part (the
// selected-node annotation) is played by the test; the e2e test
// TestLocalPathVolumes runs it all with pods.
package localpath

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kedge/kedge/agent/join"
	"github.com/kedge/kedge/agent/node/localstorage"
	"github.com/kedge/kedge/agent/node/nodeaddresses"
	"github.com/kedge/kedge/scripts/testenv"
	"github.com/kedge/kedge/server/integration/harness"
	"github.com/kedge/kedge/shared/localvolume"
)

func TestLocalPathVolumeLifecycle(t *testing.T) {
	ctx := t.Context()
	srv := harness.StartJoinable(t, harness.NewConfig(t, t.TempDir()))
	admin := srv.Client
	waitStorageClass(t, admin)

	node := nodeClient(t, srv, "edge-1")
	storage := filepath.Join(t.TempDir(), "storage")
	register(t, node, "edge-1")
	run(t, &nodeaddresses.Publisher{Client: node, Node: "edge-1", InternalIP: []byte{192, 0, 2, 61},
		Extra: map[string]string{localvolume.StoragePathAnnotation: storage}, Log: slog.New(slog.DiscardHandler)})
	run(t, &localstorage.Keeper{Client: node, Node: "edge-1", Dir: storage, Log: slog.New(slog.DiscardHandler)})

	// A released volume of this node whose path is outside its storage
	// directory: the node must not touch it.
	outside := filepath.Join(t.TempDir(), "precious")
	if err := os.Mkdir(outside, 0o700); err != nil {
		t.Fatal(err)
	}
	trap := trapVolume(outside)
	if _, err := admin.CoreV1().PersistentVolumes().Create(ctx, trap, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, admin, trap.Name, corev1.VolumeReleased)

	// Nodes may delete volumes (RBAC) but the admission policy lets a
	// node delete only its own released ones: not the trap's twin on
	// another node.
	other := trapVolume(outside)
	other.Name, other.Labels[localvolume.NodeLabel] = "pvc-other", "edge-2"
	if _, err := admin.CoreV1().PersistentVolumes().Create(ctx, other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, admin, other.Name, corev1.VolumeReleased)
	harness.WaitFor(t, 30*time.Second, "the node to be refused deleting another node's volume", func() error {
		err := node.CoreV1().PersistentVolumes().Delete(ctx, other.Name, metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}})
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "only the released local-path volumes on itself") {
			return fmt.Errorf("dry-run delete: %v", err)
		}
		return nil
	})

	claim := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "default"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("3Mi")}},
		},
	}
	claim, err := admin.CoreV1().PersistentVolumeClaims("default").Create(ctx, claim, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if claim.Spec.StorageClassName == nil || *claim.Spec.StorageClassName != "local-path" {
		t.Fatalf("a claim without a class got class %v, want the default local-path", claim.Spec.StorageClassName)
	}
	// What the scheduler does for the claim's first pod.
	claim.Annotations = map[string]string{localvolume.SelectedNodeAnnotation: "edge-1"}
	if _, err := admin.CoreV1().PersistentVolumeClaims("default").Update(ctx, claim, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	name := "pvc-" + string(claim.UID)
	dir := filepath.Join(storage, name)
	start := time.Now()
	harness.WaitFor(t, 60*time.Second, "the claim to be bound with its directory", func() error {
		got, err := admin.CoreV1().PersistentVolumeClaims("default").Get(ctx, "data", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got.Status.Phase != corev1.ClaimBound || got.Spec.VolumeName != name {
			return fmt.Errorf("claim %s, volume %q", got.Status.Phase, got.Spec.VolumeName)
		}
		_, err = os.Stat(dir)
		return err
	})
	t.Logf("annotated to bound with its directory in %s", time.Since(start).Round(time.Millisecond))
	pv, err := admin.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := pv.Spec.Capacity[corev1.ResourceStorage]; got.String() != "3Mi" {
		t.Errorf("capacity %s, want the request 3Mi", got.String())
	}
	if pv.Spec.Local == nil || pv.Spec.Local.Path != dir || pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
		t.Errorf("volume %+v", pv.Spec)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o777 {
		t.Errorf("directory mode %v (%v), want 0777", fi.Mode(), err)
	}
	if err := os.WriteFile(filepath.Join(dir, "till"), []byte("42"), 0o644); err != nil {
		t.Fatal(err)
	}

	if err := admin.CoreV1().PersistentVolumeClaims("default").Delete(ctx, "data", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	harness.WaitFor(t, 60*time.Second, "the volume and its directory to go", func() error {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("directory: %v", err)
		}
		if _, err := admin.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("volume still there (%v)", err)
		}
		return nil
	})
	t.Logf("claim deleted to volume and directory removed in %s", time.Since(start).Round(time.Millisecond))
	// The node saw the trap released before the claim's volume.
	if _, err := os.Stat(outside); err != nil {
		t.Errorf("the directory of a volume outside the storage directory was touched: %v", err)
	}
	if _, err := admin.CoreV1().PersistentVolumes().Get(ctx, trap.Name, metav1.GetOptions{}); err != nil {
		t.Errorf("a volume outside the storage directory was deleted: %v", err)
	}

	// A claim for a node that publishes no storage directory (not a kedge
	// agent) stays pending with a Warning event saying why.
	register(t, nodeClient(t, srv, "foreign"), "foreign")
	stray := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "stray", Namespace: "default", Annotations: map[string]string{localvolume.SelectedNodeAnnotation: "foreign"}},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Mi")}},
		},
	}
	if _, err := admin.CoreV1().PersistentVolumeClaims("default").Create(ctx, stray, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, 30*time.Second, "a ProvisioningFailed event on the claim for a node without a storage directory", func() error {
		events, err := admin.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=stray,reason=ProvisioningFailed"})
		if err != nil {
			return err
		}
		for _, e := range events.Items {
			if e.Type == corev1.EventTypeWarning && strings.Contains(e.Message, localvolume.StoragePathAnnotation) {
				return nil
			}
		}
		return fmt.Errorf("events %v", events.Items)
	})
	if got, err := admin.CoreV1().PersistentVolumeClaims("default").Get(ctx, "stray", metav1.GetOptions{}); err != nil || got.Status.Phase != corev1.ClaimPending {
		t.Errorf("claim for a node without a storage directory: %v, %v", got.Status.Phase, err)
	}
}

// trapVolume looks like one of the node's released local-path volumes,
// but its path is dir.
func trapVolume(dir string) *corev1.PersistentVolume {
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pvc-trap", Labels: map[string]string{localvolume.NodeLabel: "edge-1"},
			Annotations: map[string]string{localvolume.ProvisionedByAnnotation: localvolume.ProvisionerName}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Mi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			StorageClassName:              "local-path",
			// A claim that does not exist: the PV controller releases it.
			ClaimRef:               &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: "default", Name: "gone", UID: "0000-gone"},
			PersistentVolumeSource: corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: dir}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{"edge-1"}}},
			}}}},
		},
	}
}

// waitStorageClass waits until the server deployed the packaged class
// from manifests/local-storage.yaml.
func waitStorageClass(t *testing.T, c kubernetes.Interface) {
	t.Helper()
	harness.WaitFor(t, 30*time.Second, "the packaged StorageClass local-path", func() error {
		class, err := c.StorageV1().StorageClasses().Get(t.Context(), "local-path", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if class.Provisioner != localvolume.ProvisionerName || class.Annotations["storageclass.kubernetes.io/is-default-class"] != "true" ||
			class.VolumeBindingMode == nil || *class.VolumeBindingMode != storagev1.VolumeBindingWaitForFirstConsumer {
			return fmt.Errorf("class %+v", class)
		}
		return nil
	})
}

// nodeClient joins node with the agent token and returns a client with
// the node's own credentials.
func nodeClient(t *testing.T, srv *harness.Joinable, node string) kubernetes.Interface {
	t.Helper()
	certs := srv.Join(t, join.Node{Name: node, Password: "pw", Addresses: []string{"192.0.2.61"}})
	return srv.ClientAs(certs.KubeletClientCert, certs.KubeletClientKey)
}

// register creates the Node as its kubelet does.
func register(t *testing.T, c kubernetes.Interface, name string) {
	t.Helper()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelHostname: name}}}
	harness.WaitFor(t, 30*time.Second, name+" to register", func() error {
		_, err := c.CoreV1().Nodes().Create(t.Context(), node, metav1.CreateOptions{})
		return err
	})
}

func waitPhase(t *testing.T, c kubernetes.Interface, name string, phase corev1.PersistentVolumePhase) {
	t.Helper()
	harness.WaitFor(t, 60*time.Second, "volume "+name+" "+string(phase), func() error {
		pv, err := c.CoreV1().PersistentVolumes().Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if pv.Status.Phase != phase {
			return fmt.Errorf("phase %s", pv.Status.Phase)
		}
		return nil
	})
}

// run runs c until the test ends; a failure of c fails the test.
func run(t *testing.T, c interface {
	Run(context.Context, func()) error
}) {
	testenv.Start(t, c.Run)
}

package localstorage

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kedge/kedge/shared/localvolume"
)

// volume is a local-path volume of node edge-1 at path, in phase.
func volume(name, path string, phase corev1.PersistentVolumePhase, reclaim corev1.PersistentVolumeReclaimPolicy) *corev1.PersistentVolume {
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name),
			Labels:      map[string]string{localvolume.NodeLabel: "edge-1"},
			Annotations: map[string]string{localvolume.ProvisionedByAnnotation: localvolume.ProvisionerName}},
		Spec: corev1.PersistentVolumeSpec{PersistentVolumeReclaimPolicy: reclaim,
			PersistentVolumeSource: corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: path}}},
		Status: corev1.PersistentVolumeStatus{Phase: phase},
	}
}

func TestSync(t *testing.T) {
	root := filepath.Join(t.TempDir(), "storage")
	outside := filepath.Join(t.TempDir(), "precious")
	if err := os.Mkdir(outside, 0o700); err != nil {
		t.Fatal(err)
	}
	bound := volume("pvc-00000000-0000-4000-8000-000000000001", filepath.Join(root, "pvc-00000000-0000-4000-8000-000000000001"), corev1.VolumeBound, corev1.PersistentVolumeReclaimDelete)
	released := volume("pvc-00000000-0000-4000-8000-000000000002", filepath.Join(root, "pvc-00000000-0000-4000-8000-000000000002"), corev1.VolumeReleased, corev1.PersistentVolumeReclaimDelete)
	kept := volume("pvc-00000000-0000-4000-8000-000000000003", filepath.Join(root, "pvc-00000000-0000-4000-8000-000000000003"), corev1.VolumeReleased, corev1.PersistentVolumeReclaimRetain)
	trap := volume("pvc-00000000-0000-4000-8000-000000000004", outside, corev1.VolumeReleased, corev1.PersistentVolumeReclaimDelete)
	other := volume("pvc-00000000-0000-4000-8000-000000000005", filepath.Join(root, "pvc-00000000-0000-4000-8000-000000000005"), corev1.VolumeReleased, corev1.PersistentVolumeReclaimDelete)
	other.Labels[localvolume.NodeLabel] = "edge-2"
	client := fake.NewClientset(bound, released, kept, trap, other)
	k := &Keeper{Client: client, Node: "edge-1", Dir: root, Log: slog.New(slog.DiscardHandler)}
	for _, d := range []string{"pvc-00000000-0000-4000-8000-000000000002", "pvc-00000000-0000-4000-8000-000000000003", "pvc-00000000-0000-4000-8000-000000000005"} {
		if err := os.MkdirAll(filepath.Join(root, d, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, pv := range []*corev1.PersistentVolume{bound, released, kept, trap, other} {
		if err := k.sync(t.Context(), pv); err != nil {
			t.Fatalf("%s: %v", pv.Name, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(root, "pvc-00000000-0000-4000-8000-000000000001")); err != nil || fi.Mode().Perm() != 0o777 {
		t.Errorf("bound volume's directory: %v, %v; want mode 0777", fi, err)
	}
	if _, err := os.Stat(filepath.Join(root, "pvc-00000000-0000-4000-8000-000000000002")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("released volume's directory not removed: %v", err)
	}
	if _, err := client.CoreV1().PersistentVolumes().Get(t.Context(), "pvc-00000000-0000-4000-8000-000000000002", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("released volume not deleted: %v", err)
	}
	for _, d := range []string{filepath.Join(root, "pvc-00000000-0000-4000-8000-000000000003", "sub"), filepath.Join(root, "pvc-00000000-0000-4000-8000-000000000005", "sub"), outside} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s was touched: %v", d, err)
		}
	}
	for _, name := range []string{"pvc-00000000-0000-4000-8000-000000000001", "pvc-00000000-0000-4000-8000-000000000003", "pvc-00000000-0000-4000-8000-000000000004", "pvc-00000000-0000-4000-8000-000000000005"} {
		if _, err := client.CoreV1().PersistentVolumes().Get(t.Context(), name, metav1.GetOptions{}); err != nil {
			t.Errorf("volume %s was deleted: %v", name, err)
		}
	}
}

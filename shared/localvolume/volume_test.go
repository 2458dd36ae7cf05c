package localvolume

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func claim(mutate func(*corev1.PersistentVolumeClaim)) *corev1.PersistentVolumeClaim {
	c := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "data", UID: "1234abcd-0000-4000-8000-00000000abcd", ResourceVersion: "7"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceStorage: resource.MustParse("2Gi")}},
		},
	}
	if mutate != nil {
		mutate(c)
	}
	return c
}

func TestVolume(t *testing.T) {
	class := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "local-path"}, Provisioner: ProvisionerName}
	pv, err := Volume(claim(nil), class, "edge-1", "/var/lib/kedge/storage")
	if err != nil {
		t.Fatal(err)
	}
	if pv.Name != "pvc-1234abcd-0000-4000-8000-00000000abcd" || pv.Spec.Local == nil || pv.Spec.Local.Path != "/var/lib/kedge/storage/pvc-1234abcd-0000-4000-8000-00000000abcd" {
		t.Fatalf("name %q, source %+v", pv.Name, pv.Spec.PersistentVolumeSource)
	}
	if got := pv.Spec.Capacity[corev1.ResourceStorage]; got.String() != "2Gi" {
		t.Errorf("capacity %s, want the request 2Gi", got.String())
	}
	if pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
		t.Errorf("reclaim policy %s, want Delete when the class sets none", pv.Spec.PersistentVolumeReclaimPolicy)
	}
	if r := pv.Spec.ClaimRef; r == nil || r.Namespace != "shop" || r.Name != "data" || r.UID != "1234abcd-0000-4000-8000-00000000abcd" {
		t.Errorf("claimRef %+v", r)
	}
	if pv.Spec.StorageClassName != "local-path" || pv.Labels[NodeLabel] != "edge-1" || pv.Annotations[ProvisionedByAnnotation] != ProvisionerName {
		t.Errorf("class %q, labels %v, annotations %v", pv.Spec.StorageClassName, pv.Labels, pv.Annotations)
	}
	terms := pv.Spec.NodeAffinity.Required.NodeSelectorTerms
	if len(terms) != 1 || len(terms[0].MatchExpressions) != 1 || terms[0].MatchExpressions[0].Key != corev1.LabelHostname ||
		len(terms[0].MatchExpressions[0].Values) != 1 || terms[0].MatchExpressions[0].Values[0] != "edge-1" {
		t.Errorf("node affinity %+v", terms)
	}
	if dir, err := Dir("/var/lib/kedge/storage", pv); err != nil || dir != pv.Spec.Local.Path {
		t.Errorf("Dir of the provisioned volume = %q, %v", dir, err)
	}

	retain := corev1.PersistentVolumeReclaimRetain
	kept := class.DeepCopy()
	kept.ReclaimPolicy = &retain
	if pv, err := Volume(claim(nil), kept, "edge-1", "/srv"); err != nil || pv.Spec.PersistentVolumeReclaimPolicy != retain {
		t.Errorf("class with Retain: %v, %v", pv, err)
	}

	block := corev1.PersistentVolumeBlock
	for _, tc := range []struct {
		name   string
		claim  *corev1.PersistentVolumeClaim
		dir    string
		reason string
	}{
		{"block", claim(func(c *corev1.PersistentVolumeClaim) { c.Spec.VolumeMode = &block }), "/srv", "volume mode Block"},
		{"rwx", claim(func(c *corev1.PersistentVolumeClaim) {
			c.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
		}), "/srv", "access mode ReadWriteMany"},
		{"no size", claim(func(c *corev1.PersistentVolumeClaim) { c.Spec.Resources.Requests = nil }), "/srv", "no storage size"},
		{"relative dir", claim(nil), "srv", "not a clean absolute path"},
		{"unclean dir", claim(nil), "/srv/../etc", "not a clean absolute path"},
	} {
		if _, err := Volume(tc.claim, class, "edge-1", tc.dir); err == nil || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.reason)
		}
	}
}

func TestDirRefusesAnythingButAChildOfTheStorageDir(t *testing.T) {
	pv := func(name, path string, mutate func(*corev1.PersistentVolume)) *corev1.PersistentVolume {
		v := &corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{ProvisionedByAnnotation: ProvisionerName}},
			Spec: corev1.PersistentVolumeSpec{PersistentVolumeSource: corev1.PersistentVolumeSource{
				Local: &corev1.LocalVolumeSource{Path: path}}},
		}
		if mutate != nil {
			mutate(v)
		}
		return v
	}
	for _, tc := range []struct {
		name string
		root string
		pv   *corev1.PersistentVolume
	}{
		{"other provisioner", "/srv", pv("pvc-00000000-0000-4000-8000-000000000001", "/srv/pvc-00000000-0000-4000-8000-000000000001", func(v *corev1.PersistentVolume) {
			v.Annotations[ProvisionedByAnnotation] = "rancher.io/local-path"
		})},
		{"hostPath", "/srv", pv("pvc-00000000-0000-4000-8000-000000000001", "/srv/pvc-00000000-0000-4000-8000-000000000001", func(v *corev1.PersistentVolume) {
			v.Spec.PersistentVolumeSource = corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/srv/pvc-00000000-0000-4000-8000-000000000001"}}
		})},
		{"the storage dir itself", "/srv", pv("pvc-00000000-0000-4000-8000-000000000001", "/srv", nil)},
		{"the root", "/srv", pv("pvc-00000000-0000-4000-8000-000000000001", "/", nil)},
		{"outside", "/srv", pv("pvc-00000000-0000-4000-8000-000000000001", "/etc/pvc-00000000-0000-4000-8000-000000000001", nil)},
		{"dot dot", "/srv", pv("pvc-00000000-0000-4000-8000-000000000001", "/srv/../pvc-00000000-0000-4000-8000-000000000001", nil)},
		{"another volume's dir", "/srv", pv("pvc-00000000-0000-4000-8000-000000000001", "/srv/pvc-00000000-0000-4000-8000-000000000002", nil)},
		{"not a provisioned name", "/srv", pv("agent", "/srv/agent", nil)},
		{"nested", "/srv", pv("pvc-00000000-0000-4000-8000-000000000001", "/srv/pvc-00000000-0000-4000-8000-000000000001/x", nil)},
		{"name dot dot", "/srv", pv("..", "/srv/..", nil)},
		{"name with slash", "/srv", pv("a/b", "/srv/a/b", nil)},
		{"storage dir is /", "/", pv("etc", "/etc", nil)},
		{"relative storage dir", "srv", pv("pvc-00000000-0000-4000-8000-000000000001", "srv/pvc-00000000-0000-4000-8000-000000000001", nil)},
		{"unclean storage dir", "/srv/", pv("pvc-00000000-0000-4000-8000-000000000001", "/srv/pvc-00000000-0000-4000-8000-000000000001", nil)},
	} {
		if dir, err := Dir(tc.root, tc.pv); err == nil {
			t.Errorf("%s: Dir = %q, want an error", tc.name, dir)
		}
	}
	if dir, err := Dir("/srv", pv("pvc-00000000-0000-4000-8000-000000000001", "/srv/pvc-00000000-0000-4000-8000-000000000001", nil)); err != nil || dir != "/srv/pvc-00000000-0000-4000-8000-000000000001" {
		t.Errorf("Dir = %q, %v; want /srv/pvc-00000000-0000-4000-8000-000000000001", dir, err)
	}
}

package e2e

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kedge/kedge/scripts/e2e/hosts"
	"github.com/kedge/kedge/server/integration/harness"
)

// TestLocalPathVolumes: a server (with its own node "vault") and an agent
// ("edge", with --local-storage-path). A claim of the default class
// local-path used by a pod on edge gets a volume in edge's storage
// directory; a file written there outlives the pod and is read by a new
// pod on the same claim, which the volume's node affinity brings to edge;
// deleting the claim removes the volume and its directory, also when the
// claim is deleted while edge is cut off (once its link is back). Static hostPath
// and local volumes on the server's node bind and mount too.
func TestLocalPathVolumes(t *testing.T) {
	kedge := harness.Binary(t)
	net := hosts.NewNetwork(t)
	vault := net.AddHost(t, "vault")
	edge := net.AddHost(t, "edge")
	stageTestImage(t, vault)
	stageTestImage(t, edge)
	srv, join := startServer(t, kedge, vault)
	agent := edge.Start(t, append(join, "--local-storage-path", "/var/lib/kedge/volumes")...)
	procs := []*hosts.Proc{srv, agent}
	admin := adminClient(t, vault)
	ctx := t.Context()
	waitNodeReady(t, admin, "vault", procs)
	waitNodeReady(t, admin, "edge", procs)
	waitStorageClass(t, admin, procs)

	claims := admin.CoreV1().PersistentVolumeClaims("default")
	newClaim := func(name, size string) *corev1.PersistentVolumeClaim {
		claim, err := claims.Create(ctx, &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
			},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return claim
	}
	claim, spare := newClaim("till", "64Mi"), newClaim("spare", "1Mi")
	start := time.Now()
	writer := runVolumePod(t, admin, "writer", "edge", procs, map[string]string{"/data": "till", "/spare": "spare"})
	t.Logf("pod with a new claim running in %s", time.Since(start).Round(time.Millisecond))
	if got := curlPut(edge, "http://"+writer.Status.PodIP+":8080/file?p=/data/count", "42"); got != "ok" {
		t.Fatalf("write into the volume: %q", got)
	}
	pvName := "pvc-" + string(claim.UID)
	dir := filepath.Join(edge.Root, "var/lib/kedge/volumes", pvName)
	if b, err := os.ReadFile(filepath.Join(dir, "count")); err != nil || string(b) != "42" {
		t.Fatalf("the file in the node's storage directory: %q, %v", b, err)
	}
	pv, err := admin.CoreV1().PersistentVolumes().Get(ctx, pvName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := pv.Spec.Capacity[corev1.ResourceStorage]; got.String() != "64Mi" || pv.Spec.Local == nil ||
		pv.Spec.Local.Path != "/var/lib/kedge/volumes/"+pvName {
		t.Fatalf("volume capacity %s, source %+v", got.String(), pv.Spec.PersistentVolumeSource)
	}

	deletePod(t, admin, "writer", procs)
	reader := runVolumePod(t, admin, "reader", "", procs, map[string]string{"/data": "till"})
	if reader.Spec.NodeName != "edge" {
		t.Fatalf("the new pod on the claim ran on %q, want the volume's node edge", reader.Spec.NodeName)
	}
	if got := curlFrom(edge, "http://"+reader.Status.PodIP+":8080/file?p=/data/count"); got != "42" {
		t.Fatalf("a new pod on the claim read %q, want 42", got)
	}
	deletePod(t, admin, "reader", procs)

	// While edge is cut off, a released volume's directory stays; it goes
	// when the link is back.
	spareName := "pvc-" + string(spare.UID)
	spareDir := filepath.Join(edge.Root, "var/lib/kedge/volumes", spareName)
	if _, err := os.Stat(spareDir); err != nil {
		t.Fatalf("the second claim's directory: %v", err)
	}
	cut(t, edge, false)
	if err := claims.Delete(ctx, "spare", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the second claim's volume to be released", procs, func() bool {
		pv, err := admin.CoreV1().PersistentVolumes().Get(ctx, spareName, metav1.GetOptions{})
		return err == nil && pv.Status.Phase == corev1.VolumeReleased
	})
	if _, err := os.Stat(spareDir); err != nil {
		t.Fatalf("the directory of a volume released while its node is cut off: %v", err)
	}
	cut(t, edge, true)
	start = time.Now()
	waitFor(t, 120*time.Second, "the released volume and its directory to go once the link is back", procs, func() bool {
		_, err := admin.CoreV1().PersistentVolumes().Get(ctx, spareName, metav1.GetOptions{})
		_, statErr := os.Stat(spareDir)
		return apierrors.IsNotFound(err) && errors.Is(statErr, os.ErrNotExist)
	})
	t.Logf("link restored to the released volume and its directory gone in %s", time.Since(start).Round(time.Millisecond))

	if err := claims.Delete(ctx, "till", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	waitFor(t, 60*time.Second, "the volume and its directory to go", procs, func() bool {
		_, err := admin.CoreV1().PersistentVolumes().Get(ctx, pvName, metav1.GetOptions{})
		_, statErr := os.Stat(dir)
		return apierrors.IsNotFound(err) && errors.Is(statErr, os.ErrNotExist)
	})
	t.Logf("claim deleted to volume and directory gone in %s", time.Since(start).Round(time.Millisecond))

	// Static volumes: a hostPath the kubelet creates, and a local
	// directory that exists.
	if err := os.MkdirAll(filepath.Join(vault.Root, "var/lib/kedge/static/local"), 0o777); err != nil {
		t.Fatal(err)
	}
	dirOrCreate := corev1.HostPathDirectoryOrCreate
	for name, src := range map[string]corev1.PersistentVolumeSource{
		"static-host":  {HostPath: &corev1.HostPathVolumeSource{Path: "/var/lib/kedge/static/host", Type: &dirOrCreate}},
		"static-local": {Local: &corev1.LocalVolumeSource{Path: "/var/lib/kedge/static/local"}},
	} {
		pv := &corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PersistentVolumeSpec{
				Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
				AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
				PersistentVolumeSource:        src,
				NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
					MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{"vault"}}},
				}}}},
			},
		}
		if _, err := admin.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		none := ""
		if _, err := claims.Create(ctx, &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PersistentVolumeClaimSpec{
				StorageClassName: &none, VolumeName: name,
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	static := runVolumePod(t, admin, "static", "", procs, map[string]string{"/host": "static-host", "/local": "static-local"})
	for _, p := range []string{"host", "local"} {
		if got := curlPut(vault, "http://"+static.Status.PodIP+":8080/file?p=/"+p+"/f", p); got != "ok" {
			t.Fatalf("write into the static %s volume: %q", p, got)
		}
		if b, err := os.ReadFile(filepath.Join(vault.Root, "var/lib/kedge/static", p, "f")); err != nil || string(b) != p {
			t.Fatalf("the file of the static %s volume on the node: %q, %v", p, b, err)
		}
	}
}

// waitStorageClass waits until the server deployed the packaged default
// class local-path (manifests/local-storage.yaml).
func waitStorageClass(t *testing.T, c kubernetes.Interface, procs []*hosts.Proc) {
	t.Helper()
	waitFor(t, 60*time.Second, "the default StorageClass local-path", procs, func() bool {
		class, err := c.StorageV1().StorageClasses().Get(t.Context(), "local-path", metav1.GetOptions{})
		return err == nil && class.Annotations["storageclass.kubernetes.io/is-default-class"] == "true"
	})
}

// runVolumePod runs a test-image pod that mounts claims (mount path ->
// claim name), scheduled to node if it is not empty, and waits until it
// runs.
func runVolumePod(t *testing.T, c kubernetes.Interface, name, node string, procs []*hosts.Proc, claims map[string]string) *corev1.Pod {
	t.Helper()
	pod := testPod(name, "")
	if node != "" {
		pod.Spec.NodeSelector = map[string]string{corev1.LabelHostname: node}
	}
	for path, claim := range claims {
		vol := "v-" + claim
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: vol, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}})
		pod.Spec.Containers[0].VolumeMounts = append(pod.Spec.Containers[0].VolumeMounts, corev1.VolumeMount{Name: vol, MountPath: path})
	}
	if _, err := c.CoreV1().Pods("default").Create(t.Context(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return waitPodRunning(t, c, name, procs)
}

// deletePod deletes the default-namespace pod and waits until it is gone.
func deletePod(t *testing.T, c kubernetes.Interface, name string, procs []*hosts.Proc) {
	t.Helper()
	if err := c.CoreV1().Pods("default").Delete(t.Context(), name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "pod "+name+" to be gone", procs, func() bool {
		_, err := c.CoreV1().Pods("default").Get(t.Context(), name, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
}

// curlPut PUTs body to url from inside the host and returns the response
// body ("" on any failure).
func curlPut(h *hosts.Host, url, body string) string {
	out, err := exec.Command("ip", "netns", "exec", h.NS, "curl", "-s", "--max-time", "3", "-X", "PUT", "--data-binary", body, url).Output()
	if err != nil {
		return ""
	}
	return string(out)
}

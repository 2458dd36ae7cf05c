// Package localvolume is the contract of kedge's local-path volumes between
// the server's provisioner (server/controllers/localpath), which creates the
// PersistentVolume, and each node's agent (agent/node/localstorage), which owns
// the directory on its disk: the names, labels and annotations both read,
// the volume a claim gets, and the only directory a volume may name.
package localvolume

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	// ProvisionerName is the provisioner name of kedge's local-path classes.
	ProvisionerName = "kedge.io/local-path"
	// StoragePathAnnotation on a Node is the absolute directory under which
	// the node's agent keeps local-path volumes.
	StoragePathAnnotation = "kedge.io/local-storage-path"
	// NodeLabel on a provisioned PersistentVolume names its node, so that
	// a node's agent watches only its own volumes.
	NodeLabel = "kedge.io/local-path-node"
	// ProvisionedByAnnotation is the upstream annotation naming the
	// provisioner of a dynamically provisioned volume; the PV controller
	// leaves deleting such volumes to that provisioner.
	ProvisionedByAnnotation = "pv.kubernetes.io/provisioned-by"
	// SelectedNodeAnnotation is set on a claim by the scheduler (volume
	// binding mode WaitForFirstConsumer) to the node of its first pod.
	SelectedNodeAnnotation = "volume.kubernetes.io/selected-node"
)

// VolumeName is the PersistentVolume name for a claim: pvc-<claim UID>,
// also the name of its directory on the node.
func VolumeName(claim *corev1.PersistentVolumeClaim) string { return "pvc-" + string(claim.UID) }

// provisionedName matches VolumeName's names (claim UIDs are UUIDs), so
// that a volume can only ever name a directory the provisioner made.
var provisionedName = regexp.MustCompile(`^pvc-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// Volume is the PersistentVolume for claim of class on node, whose storage
// directory is storageDir: a `local` volume at storageDir/VolumeName,
// pre-bound to the claim, with the claim's requested size as capacity, its
// access modes, the class's reclaim policy (default Delete) and node
// affinity to node. It fails, with a message for the claim's events, on
// what a node directory cannot serve (block mode, ReadWriteMany) and on a
// storage directory that is not an absolute path.
func Volume(claim *corev1.PersistentVolumeClaim, class *storagev1.StorageClass, node, storageDir string) (*corev1.PersistentVolume, error) {
	if claim.Spec.VolumeMode != nil && *claim.Spec.VolumeMode != corev1.PersistentVolumeFilesystem {
		return nil, fmt.Errorf("volume mode %s is not supported by %s (only Filesystem)", *claim.Spec.VolumeMode, ProvisionerName)
	}
	for _, m := range claim.Spec.AccessModes {
		if m == corev1.ReadWriteMany {
			return nil, fmt.Errorf("access mode %s is not supported by %s (a directory on one node)", m, ProvisionerName)
		}
	}
	size, ok := claim.Spec.Resources.Requests[corev1.ResourceStorage]
	if !ok {
		return nil, errors.New("the claim requests no storage size")
	}
	if !filepath.IsAbs(storageDir) || filepath.Clean(storageDir) != storageDir {
		return nil, fmt.Errorf("node %s publishes storage directory %q, not a clean absolute path", node, storageDir)
	}
	reclaim := corev1.PersistentVolumeReclaimDelete
	if class.ReclaimPolicy != nil {
		reclaim = *class.ReclaimPolicy
	}
	name := VolumeName(claim)
	filesystem := corev1.PersistentVolumeFilesystem
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Labels:      map[string]string{NodeLabel: node},
			Annotations: map[string]string{ProvisionedByAnnotation: ProvisionerName},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: size},
			AccessModes:                   claim.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: reclaim,
			StorageClassName:              class.Name,
			VolumeMode:                    &filesystem,
			ClaimRef: &corev1.ObjectReference{
				Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: claim.Namespace, Name: claim.Name, UID: claim.UID, ResourceVersion: claim.ResourceVersion,
			},
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				Local: &corev1.LocalVolumeSource{Path: filepath.Join(storageDir, name)},
			},
			// The kubelet's --hostname-override is the node name.
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
					Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{node},
				}}}},
			}},
		},
	}, nil
}

// Dir returns the directory of pv under storageDir, the node's own
// storage directory, if pv is a volume this provisioner made for that
// directory: provisioned by ProvisionerName, a `local` volume whose path is
// exactly storageDir/<pv name>, with a name that is one path element. Any
// other volume gets an error, so that a node never creates or removes
// anything but a direct child of its storage directory.
func Dir(storageDir string, pv *corev1.PersistentVolume) (string, error) {
	if pv.Annotations[ProvisionedByAnnotation] != ProvisionerName {
		return "", fmt.Errorf("volume %s is not provisioned by %s", pv.Name, ProvisionerName)
	}
	if pv.Spec.Local == nil {
		return "", fmt.Errorf("volume %s is not a local volume", pv.Name)
	}
	if !filepath.IsAbs(storageDir) || filepath.Clean(storageDir) != storageDir || storageDir == "/" {
		return "", fmt.Errorf("storage directory %q is not a clean absolute path below /", storageDir)
	}
	if !provisionedName.MatchString(pv.Name) {
		return "", fmt.Errorf("volume name %q is not one the provisioner gives (pvc-<claim UID>)", pv.Name)
	}
	want := filepath.Join(storageDir, pv.Name)
	if pv.Spec.Local.Path != want {
		return "", fmt.Errorf("volume %s has path %q, not %q", pv.Name, pv.Spec.Local.Path, want)
	}
	return want, nil
}

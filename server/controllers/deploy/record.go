package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// What each server applied from each file is recorded in a ConfigMap in
// kube-system, one per (server, file):
//
//	kube-system/kedge-manifest-<server>-<file>-<hash>
//	  labels:      kedge.io/manifest-record: "true"
//	  annotations: kedge.io/manifest-server: <server name>
//	               kedge.io/manifest-file:   <file name>
//	               kedge.io/manifest-error:  <last error, if the last apply failed>
//	  data:        objects:  JSON list of {apiVersion, kind, namespace, name}
//	               checksum: sha256 of the file last applied
//
// `kubectl -n kube-system get configmap -l kedge.io/manifest-record` lists
// them; the Events about a file name its record.
const (
	RecordNamespace  = metav1.NamespaceSystem
	RecordLabel      = "kedge.io/manifest-record"
	ServerAnnotation = "kedge.io/manifest-server"
	FileAnnotation   = "kedge.io/manifest-file"
	ErrorAnnotation  = "kedge.io/manifest-error"
	recordPrefix     = "kedge-manifest-"
)

// record is what one server applied from one file.
type record struct {
	Server, File string
	Objects      []Ref
	Checksum     string
	Error        string
	// cm is the stored ConfigMap, nil if not stored yet.
	cm *corev1.ConfigMap
}

var notName = regexp.MustCompile(`[^a-z0-9-]+`)

// RecordName is the name of the ConfigMap that records what server applied
// from file: readable parts and a hash, so that different names never meet.
func RecordName(server, file string) string {
	part := func(s string, n int) string {
		s = strings.Trim(notName.ReplaceAllString(strings.ToLower(s), "-"), "-")
		if len(s) > n {
			s = strings.TrimRight(s[:n], "-")
		}
		return s
	}
	sum := sha256.Sum256([]byte(server + "/" + file))
	return recordPrefix + part(server, 60) + "-" + part(strings.TrimSuffix(file, ".yaml"), 60) + "-" + hex.EncodeToString(sum[:4])
}

// listRecords returns every server's records.
func listRecords(ctx context.Context, c kubernetes.Interface) ([]*record, error) {
	list, err := c.CoreV1().ConfigMaps(RecordNamespace).List(ctx, metav1.ListOptions{LabelSelector: RecordLabel + "=true"})
	if err != nil {
		return nil, fmt.Errorf("list manifest records: %w", err)
	}
	var recs []*record
	for i := range list.Items {
		cm := &list.Items[i]
		r := &record{Server: cm.Annotations[ServerAnnotation], File: cm.Annotations[FileAnnotation],
			Checksum: cm.Data["checksum"], Error: cm.Annotations[ErrorAnnotation], cm: cm}
		if r.Server == "" || r.File == "" {
			continue
		}
		if s := cm.Data["objects"]; s != "" {
			if err := json.Unmarshal([]byte(s), &r.Objects); err != nil {
				return nil, fmt.Errorf("manifest record %s: objects: %w", cm.Name, err)
			}
		}
		recs = append(recs, r)
	}
	return recs, nil
}

// save creates or updates r's ConfigMap.
func (r *record) save(ctx context.Context, c kubernetes.Interface) error {
	objects, err := json.Marshal(r.Objects)
	if err != nil {
		return err
	}
	cms := c.CoreV1().ConfigMaps(RecordNamespace)
	stored := r.cm != nil
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: RecordName(r.Server, r.File), Namespace: RecordNamespace}}
	if stored {
		cm = r.cm.DeepCopy()
	}
	cm.Labels = map[string]string{RecordLabel: "true", "app.kubernetes.io/managed-by": "kedge"}
	cm.Annotations = map[string]string{ServerAnnotation: r.Server, FileAnnotation: r.File}
	if r.Error != "" {
		cm.Annotations[ErrorAnnotation] = r.Error
	}
	cm.Data = map[string]string{"objects": string(objects), "checksum": r.Checksum}
	var saved *corev1.ConfigMap
	if !stored {
		saved, err = cms.Create(ctx, cm, metav1.CreateOptions{})
	} else {
		saved, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("save manifest record %s: %w", cm.Name, err)
	}
	r.cm = saved
	return nil
}

// delete removes r's ConfigMap.
func (r *record) delete(ctx context.Context, c kubernetes.Interface) error {
	if r.cm == nil {
		return nil
	}
	err := c.CoreV1().ConfigMaps(RecordNamespace).Delete(ctx, r.cm.Name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete manifest record %s: %w", r.cm.Name, err)
	}
	r.cm = nil
	return nil
}

// stale returns the objects of old that are neither in keep.
func stale(old []Ref, keep map[string]bool) []Ref {
	var out []Ref
	for _, r := range old {
		if !keep[r.Key()] {
			out = append(out, r)
		}
	}
	return out
}

package deploy

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Event reasons, on Events in kube-system whose involved object is the
// file's record ConfigMap:
//
//	kubectl -n kube-system get events --field-selector reason=ManifestInvalid
const (
	// ReasonInvalid: the file cannot be templated or parsed; nothing of it
	// was applied (objects applied from an earlier version stay).
	ReasonInvalid = "ManifestInvalid"
	// ReasonApplyFailed: an object could not be applied or a removed one
	// deleted; the file is retried.
	ReasonApplyFailed = "ManifestApplyFailed"
	// ReasonApplied: every object of the file is applied.
	ReasonApplied = "ManifestApplied"
)

// event records an Event about rec's file; its involved object is rec's
// ConfigMap. Events are best effort: a failure is returned for the caller to
// log, and changes nothing else.
func event(ctx context.Context, c kubernetes.Interface, rec *record, eventType, reason, message string) error {
	server, file := rec.Server, rec.File
	if len(message) > 1024 {
		message = message[:1021] + "..."
	}
	now := metav1.NewTime(time.Now())
	name := RecordName(server, file)
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x", name, now.UnixNano()), Namespace: RecordNamespace},
		InvolvedObject: corev1.ObjectReference{
			APIVersion: "v1", Kind: "ConfigMap", Namespace: RecordNamespace, Name: name,
		},
		Reason:              reason,
		Message:             file + ": " + message,
		Type:                eventType,
		Source:              corev1.EventSource{Component: FieldManager, Host: server},
		ReportingController: "kedge.io/deploy",
		ReportingInstance:   server,
		FirstTimestamp:      now,
		LastTimestamp:       now,
		Count:               1,
	}
	if rec.cm != nil {
		ev.InvolvedObject.UID = rec.cm.UID // for kubectl describe
	}
	if _, err := c.CoreV1().Events(RecordNamespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("record event %s for %s: %w", reason, file, err)
	}
	return nil
}

package certlife

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// ExpirationWarning is the reason of the Warning Event recorded on a Node
// when one of its certificates, or one of its server's, is due for renewal.
const ExpirationWarning = "CertificateExpirationWarning"

// RecordWarning records an ExpirationWarning Event on node saying that the
// certificate in file expires at notAfter.
func RecordWarning(ctx context.Context, client kubernetes.Interface, node, file string, notAfter time.Time) error {
	n, err := client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return err
	}
	now := metav1.Now()
	_, err = client.CoreV1().Events(metav1.NamespaceDefault).Create(ctx, &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x", node, now.UnixNano())},
		InvolvedObject: corev1.ObjectReference{Kind: "Node", APIVersion: "v1", Name: node, UID: n.UID},
		Reason:         ExpirationWarning,
		Message: fmt.Sprintf("certificate %s expires at %s (in %s); renewing it", file,
			notAfter.UTC().Format(time.RFC3339), Left(notAfter, time.Now())),
		Type:           corev1.EventTypeWarning,
		Source:         corev1.EventSource{Component: "kedge", Host: node},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
		ReportingController: "kedge.io/certificates", ReportingInstance: node,
	}, metav1.CreateOptions{})
	return err
}

// Left is how long until notAfter, for people: days when more than two.
func Left(notAfter, now time.Time) string {
	left := notAfter.Sub(now)
	if left > 48*time.Hour {
		return fmt.Sprintf("%d days", int(left.Hours()/24))
	}
	return left.Round(time.Second).String()
}

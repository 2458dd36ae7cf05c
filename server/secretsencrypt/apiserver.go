package secretsencrypt

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/kedge/kedge/server/controllers/endpoints"
)

// configInfoMetric carries, in its hash label, the hash of the encryption
// config the apiserver last applied: at start and after each automatic
// reload (k8s.io/apiserver/pkg/server/options/encryptionconfig/metrics).
const configInfoMetric = "apiserver_encryption_config_controller_last_config_info"

// LoadedHash returns the hash (see Hash) of the encryption config that the
// apiserver behind client applied, read from its /metrics, or "" if it runs
// without one.
func LoadedHash(ctx context.Context, client kubernetes.Interface) (string, error) {
	body, err := client.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return "", fmt.Errorf("read the apiserver's metrics: %w", err)
	}
	return parseConfigInfo(body), nil
}

// parseConfigInfo finds the hash label of configInfoMetric in a Prometheus
// text exposition.
func parseConfigInfo(body []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), configInfoMetric+"{")
		if !ok {
			continue
		}
		labels, _, _ := strings.Cut(rest, "}")
		for _, label := range strings.Split(labels, ",") {
			if name, value, _ := strings.Cut(label, "="); name == "hash" {
				return strings.Trim(value, `"`)
			}
		}
	}
	return ""
}

// WaitLoaded polls the apiserver's metrics every half second until it has
// applied the config whose content is data (the automatic reload reads the
// file every few seconds), or until timeout.
func WaitLoaded(ctx context.Context, client kubernetes.Interface, data []byte, timeout time.Duration) error {
	want := Hash(data)
	var last string
	var lastErr error
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		last, lastErr = LoadedHash(ctx, client)
		return lastErr == nil && last == want, nil
	})
	if err == nil {
		return nil
	}
	if lastErr != nil {
		return fmt.Errorf("the apiserver did not load the new encryption config within %s: %w", timeout, lastErr)
	}
	return fmt.Errorf("the apiserver did not load the new encryption config within %s (it runs %s, want %s); is the server running with --secrets-encryption? its log names the problem", timeout, orNone(last), want)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// liveServers counts the servers whose endpoint lease (server/controllers/
// endpoints) has not expired.
func liveServers(ctx context.Context, client kubernetes.Interface, now time.Time) (int, error) {
	leases, err := client.CoordinationV1().Leases(endpoints.LeaseNamespace).List(ctx, metav1.ListOptions{LabelSelector: endpoints.LeaseLabel})
	if err != nil {
		return 0, fmt.Errorf("list the servers' leases: %w", err)
	}
	n := 0
	for _, l := range leases.Items {
		if l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
			continue
		}
		if l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second).After(now) {
			n++
		}
	}
	return n, nil
}

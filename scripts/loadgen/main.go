// Command loadgen creates ConfigMaps from concurrent clients against a
// cluster and prints throughput and latency percentiles. scripts/bench runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "admin kubeconfig")
	total := flag.Int("n", 2000, "ConfigMaps to create")
	clients := flag.Int("c", 16, "concurrent clients")
	namespace := flag.String("namespace", "bench", "namespace to create them in (created if missing)")
	flag.Parse()
	if err := run(*kubeconfig, *namespace, *total, *clients); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(kubeconfig, namespace string, total, clients int) error {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	rc.QPS, rc.Burst = -1, 0 // no client-side throttling: measure the server
	ctx := context.Background()
	setup := kubernetes.NewForConfigOrDie(rc)
	_, err = setup.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	var next atomic.Int64
	latencies := make([][]time.Duration, clients)
	errs := make([]error, clients)
	var wg sync.WaitGroup
	start := time.Now()
	for c := range clients {
		cs := kubernetes.NewForConfigOrDie(rc) // one connection per client
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(total) {
					return
				}
				cm := &corev1.ConfigMap{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-%d-%d", start.UnixNano(), i)},
					Data:       map[string]string{"value": fmt.Sprint(i)},
				}
				t0 := time.Now()
				if _, err := cs.CoreV1().ConfigMaps(namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
					errs[c] = err
					return
				}
				latencies[c] = append(latencies[c], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	var all []time.Duration
	for _, l := range latencies {
		all = append(all, l...)
	}
	slices.Sort(all)
	pct := func(p float64) time.Duration { return all[int(p*float64(len(all)-1))] }
	fmt.Printf("writes_per_s=%.0f p50_ms=%.1f p99_ms=%.1f\n",
		float64(len(all))/elapsed.Seconds(), ms(pct(0.50)), ms(pct(0.99)))
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

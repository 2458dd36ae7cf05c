package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/kedge/kedge/scripts/procmem"
)

// churnOptions: after the pods are Running, the run goes on for duration
// with objects created and deleted (every 10 s 20 ConfigMaps of 4 KB made
// and the previous 20 deleted; every minute 10 pods deleted, which their
// Deployments replace), then deletes the Deployments and ConfigMaps and
// watches for settle. Every `every` it appends a row to report: the
// database's files (dbGlobs, comma-separated globs) and the server's
// memory (serverPID).
type churnOptions struct {
	duration, settle, every time.Duration
	dbGlobs, report         string
	serverPID               int
}

// churn runs the churn and writes the report table.
func churn(cs kubernetes.Interface, namespace string, o churnOptions) error {
	report, err := os.Create(o.report)
	if err != nil {
		return err
	}
	defer report.Close()
	fmt.Fprintln(report, "| phase | time | database + WAL (MB) | server RSS / PSS (MB) | ConfigMaps / pods |")
	fmt.Fprintln(report, "|---|---|---|---|---|")
	t0 := time.Now()
	row := func(ctx context.Context, phase string) {
		cms, _ := cs.CoreV1().ConfigMaps(namespace).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		pods, _ := cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		rss, pss, _ := procmem.MB(o.serverPID)
		fmt.Fprintf(report, "| %s | %s | %.1f | %.0f / %.0f | %d / %d |\n", phase, time.Since(t0).Round(time.Minute),
			filesMB(o.dbGlobs), rss, pss, len(cms.Items), len(pods.Items))
	}

	ctx, cancel := context.WithTimeout(context.Background(), o.duration)
	defer cancel()
	row(ctx, "churn")
	value := strings.Repeat("x", 4<<10)
	next := time.Now().Add(o.every)
	for tick := 0; ctx.Err() == nil; tick++ {
		for i := range 20 {
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("churn-%d-%d", tick, i)}, Data: map[string]string{"v": value}}
			if _, err := cs.CoreV1().ConfigMaps(namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil && ctx.Err() == nil {
				return fmt.Errorf("churn: %w", err)
			}
			if tick > 0 {
				err := cs.CoreV1().ConfigMaps(namespace).Delete(ctx, fmt.Sprintf("churn-%d-%d", tick-1, i), metav1.DeleteOptions{})
				if err != nil && !apierrors.IsNotFound(err) && ctx.Err() == nil {
					return fmt.Errorf("churn: %w", err)
				}
			}
		}
		if tick%6 == 0 {
			if err := deleteSomePods(ctx, cs, namespace, 10); err != nil && ctx.Err() == nil {
				return fmt.Errorf("churn: %w", err)
			}
		}
		if time.Now().After(next) {
			row(ctx, "churn")
			next = next.Add(o.every)
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Second): // the churn's pace
		}
	}

	// Everything goes; the database should give the space back.
	sctx, scancel := context.WithTimeout(context.Background(), o.settle+5*time.Minute)
	defer scancel()
	row(sctx, "end of churn")
	if err := cs.AppsV1().Deployments(namespace).DeleteCollection(sctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		return err
	}
	if err := cs.CoreV1().ConfigMaps(namespace).DeleteCollection(sctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		return err
	}
	err = wait.PollUntilContextCancel(sctx, time.Second, true, func(ctx context.Context) (bool, error) {
		pods, err := cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{Limit: 1})
		return err == nil && len(pods.Items) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("pods not gone after the Deployments were deleted: %w", err)
	}
	deleted := time.Now()
	row(sctx, "deleted")
	for end := deleted.Add(o.settle); time.Now().Before(end); {
		time.Sleep(min(o.every, time.Until(end))) // the report's pace
		row(sctx, "after deletion")
	}
	return nil
}

// deleteSomePods deletes n random pods of namespace.
func deleteSomePods(ctx context.Context, cs kubernetes.Interface, namespace string, n int) error {
	pods, err := cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		return err
	}
	for range min(n, len(pods.Items)) {
		p := pods.Items[rand.IntN(len(pods.Items))]
		if err := cs.CoreV1().Pods(namespace).Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

// filesMB is the total size of the files matching the comma-separated globs.
func filesMB(globs string) float64 {
	var n int64
	for _, g := range strings.Split(globs, ",") {
		files, _ := filepath.Glob(g)
		for _, f := range files {
			if st, err := os.Stat(f); err == nil {
				n += st.Size()
			}
		}
	}
	return float64(n) / (1 << 20)
}

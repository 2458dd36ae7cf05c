package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

// kwokKey marks what KWOK simulates: the bench starts it with
// --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake. The same
// key taints the nodes so that only the bench's pods (which tolerate it)
// land on them, not the cluster's add-ons.
const kwokKey = "kwok.x-k8s.io/node"

// createNodes creates n Node objects for KWOK to run, each with room for
// 110 pods (the kubelet's default).
func createNodes(ctx context.Context, cs kubernetes.Interface, n int) error {
	room := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	return parallel(n, 16, func(i int) error {
		name := fmt.Sprintf("kwok-node-%03d", i)
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name:        name,
				Annotations: map[string]string{kwokKey: "fake"},
				Labels: map[string]string{
					"type": "kwok", "kubernetes.io/hostname": name,
					"kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
				},
			},
			Spec:   corev1.NodeSpec{Taints: []corev1.Taint{{Key: kwokKey, Value: "fake", Effect: corev1.TaintEffectNoSchedule}}},
			Status: corev1.NodeStatus{Capacity: room, Allocatable: room},
		}
		_, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	})
}

// waitNodesReady waits until n nodes labelled type=kwok are Ready.
func waitNodesReady(ctx context.Context, cs kubernetes.Interface, n int) error {
	ready := 0
	err := wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "type=kwok"})
		if err != nil {
			return false, nil
		}
		ready = 0
		for _, node := range nodes.Items {
			for _, c := range node.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		return ready >= n, nil
	})
	if err != nil {
		return fmt.Errorf("%d of %d KWOK nodes Ready (is kwok running?): %w", ready, n, err)
	}
	return nil
}

// ensureNamespace creates the namespace and waits for its default
// ServiceAccount, without which pod creates are refused and retried.
func ensureNamespace(ctx context.Context, cs kubernetes.Interface, name string) error {
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	err = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("no default ServiceAccount in %s: %w", name, err)
	}
	return nil
}

// createDeployments creates n Deployments of replicas pods each, all at once.
func createDeployments(ctx context.Context, cs kubernetes.Interface, namespace string, n, replicas int) error {
	return parallel(n, n, func(i int) error {
		name := fmt.Sprintf("scale-%02d", i)
		labels := map[string]string{"app": name}
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To(int32(replicas)),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{
						NodeSelector: map[string]string{"type": "kwok"},
						Tolerations:  []corev1.Toleration{{Key: kwokKey, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
						Containers: []corev1.Container{{
							Name:  "app",
							Image: "registry.k8s.io/pause:3.10",
							Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
								corev1.ResourceCPU:    resource.MustParse("10m"),
								corev1.ResourceMemory: resource.MustParse("16Mi"),
							}},
						}},
					},
				},
			},
		}
		_, err := cs.AppsV1().Deployments(namespace).Create(ctx, d, metav1.CreateOptions{})
		return err
	})
}

// startReaders starts n clients that each, 10 times a second, GET a pod or
// LIST one Deployment's pods (what kubectl and dashboards do), and returns
// a function that stops them. Errors are ignored: only the server-side
// latency is reported.
func startReaders(ctx context.Context, cs kubernetes.Interface, namespace string, n, deployments int) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for r := range n {
		wg.Go(func() {
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for i := r; ; i++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				app := fmt.Sprintf("scale-%02d", i%deployments)
				if i%2 == 0 {
					_, _ = cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
					continue
				}
				pods, err := cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app, Limit: 1})
				if err == nil && len(pods.Items) > 0 {
					_, _ = cs.CoreV1().Pods(namespace).Get(ctx, pods.Items[0].Name, metav1.GetOptions{})
				}
			}
		})
	}
	return func() { cancel(); wg.Wait() }
}

// podWatch counts the namespace's pods from an informer.
type podWatch struct {
	store cache.Store
}

func watchPods(ctx context.Context, cs kubernetes.Interface, namespace string) (*podWatch, error) {
	f := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(namespace))
	inf := f.Core().V1().Pods().Informer()
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return nil, fmt.Errorf("pod informer did not sync: %w", ctx.Err())
	}
	return &podWatch{store: inf.GetStore()}, nil
}

// marks are the durations from the start until all pods existed, were
// bound to a node, and were Running.
type marks struct{ created, scheduled, running time.Duration }

// until waits until want pods are Running, noting when each stage was
// first complete.
func (w *podWatch) until(ctx context.Context, want int, t0 time.Time) (marks, error) {
	var m marks
	var created, scheduled, running int
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		created, scheduled, running = 0, 0, 0
		for _, obj := range w.store.List() {
			p := obj.(*corev1.Pod)
			created++
			if p.Spec.NodeName != "" {
				scheduled++
			}
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		now := time.Since(t0)
		if m.created == 0 && created >= want {
			m.created = now
		}
		if m.scheduled == 0 && scheduled >= want {
			m.scheduled = now
		}
		if running >= want {
			m.running = now
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return m, fmt.Errorf("after %s: %d pods created, %d scheduled, %d Running of %d: %w",
			time.Since(t0).Round(time.Second), created, scheduled, running, want, err)
	}
	return m, nil
}

// parallel runs f(0..n-1) on at most width goroutines and returns the first
// error.
func parallel(n, width int, f func(i int) error) error {
	sem := make(chan struct{}, width)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = f(i)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

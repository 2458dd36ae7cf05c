// Package tainteviction runs upstream's taint-eviction controller
// (k8s.io/kubernetes/pkg/controller/tainteviction) in place of the
// controller-manager's, with one change for edge nodes: a node that is only
// unreachable (taint node.kubernetes.io/unreachable:NoExecute) does not
// have its pods evicted unless the Node opts in with the annotation
// EvictWhenUnreachable="true". Every other NoExecute taint evicts as
// upstream does.
package tainteviction

import (
	"context"
	"fmt"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/kubernetes/pkg/controller"
	upstream "k8s.io/kubernetes/pkg/controller/tainteviction"

	"github.com/kedge/kedge/embedded/component"
)

// EvictWhenUnreachable is the Node annotation that, set to "true", lets an
// unreachable node's pods be evicted after their toleration runs out.
const EvictWhenUnreachable = "kedge.io/evict-when-unreachable"

// ControllerName is the upstream controller this one replaces; the
// controller-manager runs with it disabled.
const ControllerName = "taint-eviction-controller"

// Controller is the taint-eviction controller as a component.
type Controller struct {
	// Client deletes pods and records events.
	Client kubernetes.Interface
	Log    *slog.Logger
}

var _ component.Component = (*Controller)(nil)

// Name implements component.Component.
func (c *Controller) Name() string { return ControllerName }

// Run implements component.Component. It is ready once its node and pod
// caches are synced; it returns when ctx is cancelled.
func (c *Controller) Run(ctx context.Context, ready func()) error {
	factory := informers.NewSharedInformerFactory(c.Client, 0)
	defer factory.Shutdown()
	nodes := factory.Core().V1().Nodes()
	if err := nodes.Informer().SetTransform(HideUnreachable); err != nil {
		return fmt.Errorf("node view: %w", err)
	}
	pods := factory.Core().V1().Pods()
	if err := controller.AddPodNodeNameIndexer(pods.Informer()); err != nil {
		return fmt.Errorf("pod index: %w", err)
	}
	tc, err := upstream.New(ctx, c.Client, pods, nodes, ControllerName)
	if err != nil {
		return fmt.Errorf("taint eviction: %w", err)
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), nodes.Informer().HasSynced, pods.Informer().HasSynced) {
		return nil // cancelled before the caches synced
	}
	ready()
	tc.Run(ctx)
	return nil
}

// HideUnreachable is the informer transform: for a Node without
// EvictWhenUnreachable="true" it drops the unreachable NoExecute taint from
// the controller's view (the stored Node keeps it). Other objects pass.
func HideUnreachable(obj any) (any, error) {
	node, ok := obj.(*corev1.Node)
	if !ok || node.Annotations[EvictWhenUnreachable] == "true" {
		return obj, nil
	}
	kept := node.Spec.Taints[:0:0]
	for _, t := range node.Spec.Taints {
		if t.Key == corev1.TaintNodeUnreachable && t.Effect == corev1.TaintEffectNoExecute {
			continue
		}
		kept = append(kept, t)
	}
	node.Spec.Taints = kept
	return node, nil
}

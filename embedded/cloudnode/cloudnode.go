// Package cloudnode runs upstream's cloud node controller
// (k8s.io/cloud-provider/controllers/node) in-process, as the
// cloud-controller-manager would: it initializes the Nodes of kubelets run
// with --cloud-provider=external (provider ID, addresses from the cloud
// provider, then it removes the taint
// node.cloudprovider.kubernetes.io/uninitialized) and keeps their addresses
// up to date.
package cloudnode

import (
	"context"
	"fmt"
	"time"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	cloudprovider "k8s.io/cloud-provider"
	upstream "k8s.io/cloud-provider/controllers/node"
	controllersmetrics "k8s.io/component-base/metrics/prometheus/controllers"

	"github.com/kedge/kedge/embedded/component"
)

// Controller is the cloud node controller as a component.
type Controller struct {
	// Client reads and updates Nodes and records events.
	Client kubernetes.Interface
	Cloud  cloudprovider.Interface
	// ResyncPeriod is how often the addresses of initialized Nodes are
	// checked against the cloud (default 5 s; upstream only looks at
	// initialized Nodes then, not on their events). Initialization itself
	// follows Node events at once.
	ResyncPeriod time.Duration
}

var _ component.Component = (*Controller)(nil)

// Name implements component.Component.
func (c *Controller) Name() string { return "cloud-node-controller" }

// Run implements component.Component. It is ready once its node cache is
// synced; it returns when ctx is cancelled.
func (c *Controller) Run(ctx context.Context, ready func()) error {
	period := c.ResyncPeriod
	if period <= 0 {
		period = 5 * time.Second
	}
	factory := informers.NewSharedInformerFactory(c.Client, 0)
	defer factory.Shutdown()
	nodes := factory.Core().V1().Nodes()
	cnc, err := upstream.NewCloudNodeController(nodes, c.Client, c.Cloud, period, 1, 1)
	if err != nil {
		return fmt.Errorf("cloud node controller: %w", err)
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), nodes.Informer().HasSynced) {
		return nil // cancelled before the cache synced
	}
	ready()
	cnc.RunWithContext(ctx, controllersmetrics.NewControllerManagerMetrics("kedge"))
	return nil
}

package metricsapi

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kedge/kedge/embedded/component"
)

// Collector scrapes every node's kubelet /metrics/resource through the
// apiserver's node proxy (which reaches agents behind NAT through their
// reverse tunnels) every Interval, into Store.
type Collector struct {
	Client kubernetes.Interface
	Store  *Store
	// Interval is the time between scrapes (default 15 s); Timeout bounds
	// one node's scrape (default 10 s).
	Interval, Timeout time.Duration
	Log               *slog.Logger
}

var _ component.Component = (*Collector)(nil)

// Name implements component.Component.
func (c *Collector) Name() string { return "metrics-collector" }

// parallel is how many nodes are scraped at once.
const parallel = 8

// Run is ready at once (metrics appear after two scrapes) and scrapes until
// ctx ends. A node that cannot be scraped is logged at debug level and
// keeps its older readings until they are Store.MaxAge old.
func (c *Collector) Run(ctx context.Context, ready func()) error {
	ready()
	interval := c.Interval
	if interval <= 0 {
		interval = 15 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := c.collect(ctx); err != nil && ctx.Err() == nil {
			c.Log.Debug("collect resource metrics", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (c *Collector) collect(ctx context.Context) error {
	nodes, err := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	names := make(map[string]bool, len(nodes.Items))
	for _, n := range nodes.Items {
		names[n.Name] = true
	}
	c.Store.Retain(func(n string) bool { return names[n] })
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for name := range names {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			sc, err := c.scrape(ctx, name)
			if err != nil {
				if ctx.Err() == nil {
					c.Log.Debug("scrape kubelet resource metrics", "node", name, "error", err)
				}
				return
			}
			c.Store.Add(name, sc)
		})
	}
	wg.Wait()
	return nil
}

func (c *Collector) scrape(ctx context.Context, node string) (*Scrape, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	body, err := c.Client.CoreV1().RESTClient().Get().
		Resource("nodes").Name(node).SubResource("proxy").Suffix("metrics", "resource").
		SetHeader("Accept", "text/plain;version=0.0.4").
		Stream(ctx)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	return ParseResource(body)
}

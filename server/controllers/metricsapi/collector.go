package metricsapi

import (
	"bytes"
	"context"
	"fmt"
	"io"
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

	mu      sync.Mutex
	failing map[string]bool // nodes whose last scrape failed
}

var _ component.Component = (*Collector)(nil)

// Name implements component.Component.
func (c *Collector) Name() string { return "metrics-collector" }

const (
	// parallel is how many nodes are scraped at once.
	parallel = 8
	// maxScrapeBytes bounds one /metrics/resource response (a few hundred
	// bytes per container).
	maxScrapeBytes = 16 << 20
)

// Run is ready at once (metrics appear after two scrapes) and scrapes until
// ctx ends. A node that cannot be scraped keeps its older readings until
// they are Store.MaxAge old; its first failure is logged as a warning (the
// following ones at debug level) and its recovery at info level.
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
			if err != nil && ctx.Err() != nil {
				return
			}
			c.report(name, err)
			if err == nil {
				c.Store.Add(name, sc)
			}
		})
	}
	wg.Wait()
	c.mu.Lock()
	for n := range c.failing {
		if !names[n] {
			delete(c.failing, n)
		}
	}
	c.mu.Unlock()
	return nil
}

// report logs a node's scrape result when it changes (failures after the
// first at debug level).
func (c *Collector) report(node string, err error) {
	c.mu.Lock()
	was := c.failing[node]
	if err != nil {
		if c.failing == nil {
			c.failing = map[string]bool{}
		}
		c.failing[node] = true
	} else {
		delete(c.failing, node)
	}
	c.mu.Unlock()
	switch {
	case err != nil && !was:
		c.Log.Warn("cannot scrape kubelet resource metrics", "node", node, "error", err)
	case err != nil:
		c.Log.Debug("cannot scrape kubelet resource metrics", "node", node, "error", err)
	case was:
		c.Log.Info("scraping kubelet resource metrics again", "node", node)
	}
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
	// One byte more than the limit tells a cut-off scrape, which would
	// otherwise parse and drop the containers it lost, from a whole one.
	data, err := io.ReadAll(io.LimitReader(body, maxScrapeBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxScrapeBytes {
		return nil, fmt.Errorf("resource metrics larger than %d bytes", maxScrapeBytes)
	}
	return ParseResource(bytes.NewReader(data))
}

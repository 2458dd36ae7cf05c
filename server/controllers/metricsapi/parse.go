// Package metricsapi serves the metrics.k8s.io/v1beta1 API (what
// metrics-server serves, so that `kubectl top` works) from inside the kedge
// server: a Collector scrapes every kubelet's /metrics/resource through the
// apiserver's node proxy, a Store keeps two samples of each node and
// container to compute CPU rates, and a Handler answers the aggregator's
// proxied requests, authenticated by its front-proxy client certificate and
// authorized with a SubjectAccessReview.
package metricsapi

import (
	"fmt"
	"io"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Sample is one reading of a cumulative CPU counter and a memory gauge.
type Sample struct {
	// CPU is the cumulative CPU time in core-seconds.
	CPU float64
	// Memory is the working set in bytes.
	Memory uint64
	// Time is when the kubelet took the reading.
	Time time.Time
	// Start is when the container started (zero for a node); a new start
	// time means a restart, whose counter starts again at zero.
	Start time.Time
}

// ContainerKey names a container of a pod.
type ContainerKey struct {
	Namespace, Pod, Container string
}

// Scrape is one node's /metrics/resource.
type Scrape struct {
	// Node is the node's own reading; nil if the kubelet reported none.
	Node       *Sample
	Containers map[ContainerKey]Sample
}

// The metric names of the kubelet's resource metrics endpoint.
const (
	nodeCPU          = "node_cpu_usage_seconds_total"
	nodeMemory       = "node_memory_working_set_bytes"
	containerCPU     = "container_cpu_usage_seconds_total"
	containerMemory  = "container_memory_working_set_bytes"
	containerStarted = "container_start_time_seconds"
)

// ParseResource parses the Prometheus text format of a kubelet's
// /metrics/resource. A node or container needs both its CPU and memory
// readings, with timestamps, to be included; others are left out.
func ParseResource(r io.Reader) (*Scrape, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse resource metrics: %w", err)
	}
	s := &Scrape{Containers: map[ContainerKey]Sample{}}
	cpu, okCPU := single(families[nodeCPU])
	mem, okMem := single(families[nodeMemory])
	if okCPU && okMem && cpu.GetTimestampMs() > 0 {
		s.Node = &Sample{CPU: value(cpu), Memory: uint64(value(mem)), Time: time.UnixMilli(cpu.GetTimestampMs())}
	}
	cpus := byContainer(families[containerCPU])
	mems := byContainer(families[containerMemory])
	starts := byContainer(families[containerStarted])
	for k, c := range cpus {
		m, ok := mems[k]
		if !ok || c.GetTimestampMs() <= 0 {
			continue
		}
		smp := Sample{CPU: value(c), Memory: uint64(value(m)), Time: time.UnixMilli(c.GetTimestampMs())}
		if st, ok := starts[k]; ok {
			sec := value(st)
			smp.Start = time.Unix(0, int64(sec*float64(time.Second)))
		}
		s.Containers[k] = smp
	}
	return s, nil
}

func single(mf *dto.MetricFamily) (*dto.Metric, bool) {
	if mf == nil || len(mf.Metric) != 1 {
		return nil, false
	}
	return mf.Metric[0], true
}

func byContainer(mf *dto.MetricFamily) map[ContainerKey]*dto.Metric {
	out := map[ContainerKey]*dto.Metric{}
	if mf == nil {
		return out
	}
	for _, m := range mf.Metric {
		var k ContainerKey
		for _, l := range m.Label {
			switch l.GetName() {
			case "namespace":
				k.Namespace = l.GetValue()
			case "pod":
				k.Pod = l.GetValue()
			case "container":
				k.Container = l.GetValue()
			}
		}
		if k.Namespace != "" && k.Pod != "" && k.Container != "" {
			out[k] = m
		}
	}
	return out
}

// value is the reading of a counter, gauge or untyped metric.
func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return 0
}

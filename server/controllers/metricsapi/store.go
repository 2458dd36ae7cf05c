package metricsapi

import (
	"sort"
	"sync"
	"time"
)

// Usage is a rate of CPU use and the latest memory working set, over
// Window ending at Time.
type Usage struct {
	// NanoCores is the CPU use in billionths of a core.
	NanoCores int64
	// Memory is the working set in bytes.
	Memory uint64
	Time   time.Time
	Window time.Duration
}

// ContainerUsage is the usage of one container of a pod.
type ContainerUsage struct {
	Name string
	Usage
}

// PodUsage is the usage of every container of a pod; Time and Window are
// those of its latest container reading.
type PodUsage struct {
	Namespace, Name string
	Time            time.Time
	Window          time.Duration
	Containers      []ContainerUsage
}

// pair is the two latest readings of one counter.
type pair struct {
	prev, last Sample
	hasPrev    bool
}

// add records s as the latest reading. A reading not newer than the last is
// ignored (the kubelet repeats cached stats); a restart (new start time or
// a counter that went back) drops the history, so no rate spans it.
func (p *pair) add(s Sample) {
	switch {
	case p.last.Time.IsZero():
		p.last = s
	case !s.Time.After(p.last.Time):
	case !s.Start.Equal(p.last.Start) || s.CPU < p.last.CPU:
		p.last, p.hasPrev = s, false
	default:
		p.prev, p.last, p.hasPrev = p.last, s, true
	}
}

// usage is the rate between the two readings, if there are two and the
// latest is not older than maxAge at now.
func (p *pair) usage(now time.Time, maxAge time.Duration) (Usage, bool) {
	if !p.hasPrev || now.Sub(p.last.Time) > maxAge {
		return Usage{}, false
	}
	window := p.last.Time.Sub(p.prev.Time)
	rate := (p.last.CPU - p.prev.CPU) / window.Seconds()
	return Usage{NanoCores: int64(rate * 1e9), Memory: p.last.Memory, Time: p.last.Time, Window: window}, true
}

type nodeEntry struct {
	node       pair
	containers map[ContainerKey]*pair
}

// Store keeps the two latest readings of every node and container. It is
// safe for concurrent use: the Collector adds, the Handler reads.
type Store struct {
	// MaxAge is how old a node's or container's latest reading may be and
	// still be served (a node that stopped answering drops out); default
	// 2 minutes.
	MaxAge time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time

	mu    sync.RWMutex
	nodes map[string]*nodeEntry
}

func (s *Store) maxAge() time.Duration {
	if s.MaxAge <= 0 {
		return 2 * time.Minute
	}
	return s.MaxAge
}

func (s *Store) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

// Add records a scrape of node. Containers that the scrape no longer
// lists are forgotten.
func (s *Store) Add(node string, sc *Scrape) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nodes == nil {
		s.nodes = map[string]*nodeEntry{}
	}
	e := s.nodes[node]
	if e == nil {
		e = &nodeEntry{containers: map[ContainerKey]*pair{}}
		s.nodes[node] = e
	}
	if sc.Node != nil {
		e.node.add(*sc.Node)
	}
	for k := range e.containers {
		if _, ok := sc.Containers[k]; !ok {
			delete(e.containers, k)
		}
	}
	for k, smp := range sc.Containers {
		p := e.containers[k]
		if p == nil {
			p = &pair{}
			e.containers[k] = p
		}
		p.add(smp)
	}
}

// Retain forgets every node for which keep returns false.
func (s *Store) Retain(keep func(node string) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for n := range s.nodes {
		if !keep(n) {
			delete(s.nodes, n)
		}
	}
}

// Node returns the usage of node, if it has a current rate.
func (s *Store) Node(node string) (Usage, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e := s.nodes[node]
	if e == nil {
		return Usage{}, false
	}
	return e.node.usage(s.now(), s.maxAge())
}

// Pods returns the usage of the pods in namespace (all namespaces if
// empty), sorted by namespace and name. A pod is left out until every one
// of its containers has a current rate, so that no pod is under-counted.
func (s *Store) Pods(namespace string) []PodUsage {
	s.mu.RLock()
	defer s.mu.RUnlock()
	now, maxAge := s.now(), s.maxAge()
	type podKey struct{ ns, name string }
	pods := map[podKey]*PodUsage{}
	incomplete := map[podKey]bool{}
	for _, e := range s.nodes {
		for k, p := range e.containers {
			if namespace != "" && k.Namespace != namespace {
				continue
			}
			pk := podKey{k.Namespace, k.Pod}
			u, ok := p.usage(now, maxAge)
			if !ok {
				incomplete[pk] = true
				continue
			}
			pu := pods[pk]
			if pu == nil {
				pu = &PodUsage{Namespace: k.Namespace, Name: k.Pod}
				pods[pk] = pu
			}
			pu.Containers = append(pu.Containers, ContainerUsage{Name: k.Container, Usage: u})
			if u.Time.After(pu.Time) {
				pu.Time, pu.Window = u.Time, u.Window
			}
		}
	}
	out := make([]PodUsage, 0, len(pods))
	for pk, pu := range pods {
		if incomplete[pk] {
			continue
		}
		sort.Slice(pu.Containers, func(i, j int) bool { return pu.Containers[i].Name < pu.Containers[j].Name })
		out = append(out, *pu)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Pod returns the usage of one pod, as Pods would.
func (s *Store) Pod(namespace, name string) (PodUsage, bool) {
	for _, p := range s.Pods(namespace) {
		if p.Name == name {
			return p, true
		}
	}
	return PodUsage{}, false
}

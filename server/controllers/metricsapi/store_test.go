package metricsapi

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

func scrape(node *Sample, containers map[ContainerKey]Sample) *Scrape {
	if containers == nil {
		containers = map[ContainerKey]Sample{}
	}
	return &Scrape{Node: node, Containers: containers}
}

func TestStoreNodeRate(t *testing.T) {
	s := &Store{Now: func() time.Time { return at(30) }}
	s.Add("n1", scrape(&Sample{CPU: 100, Memory: 500, Time: at(0)}, nil))
	if _, ok := s.Node("n1"); ok {
		t.Fatal("a rate from one sample")
	}
	// The kubelet repeats a cached reading: ignored, no division by zero.
	s.Add("n1", scrape(&Sample{CPU: 100, Memory: 500, Time: at(0)}, nil))
	if _, ok := s.Node("n1"); ok {
		t.Fatal("a rate from a repeated sample")
	}
	s.Add("n1", scrape(&Sample{CPU: 103, Memory: 700, Time: at(15)}, nil))
	u, ok := s.Node("n1")
	if !ok {
		t.Fatal("no rate after two samples")
	}
	if want := (Usage{NanoCores: 200_000_000, Memory: 700, Time: at(15), Window: 15 * time.Second}); u != want {
		t.Errorf("usage = %+v, want %+v", u, want)
	}
	// Only the two latest samples count.
	s.Add("n1", scrape(&Sample{CPU: 109, Memory: 800, Time: at(25)}, nil))
	if u, _ := s.Node("n1"); u.NanoCores != 600_000_000 || u.Window != 10*time.Second {
		t.Errorf("usage = %+v, want 0.6 cores over 10 s", u)
	}
	if _, ok := s.Node("other"); ok {
		t.Error("usage of an unknown node")
	}
}

func TestStoreStaleAndRetain(t *testing.T) {
	now := at(20)
	s := &Store{MaxAge: time.Minute, Now: func() time.Time { return now }}
	s.Add("n1", scrape(&Sample{CPU: 1, Time: at(0)}, nil))
	s.Add("n1", scrape(&Sample{CPU: 2, Time: at(10)}, nil))
	if _, ok := s.Node("n1"); !ok {
		t.Fatal("no usage")
	}
	now = at(71)
	if _, ok := s.Node("n1"); ok {
		t.Error("served a reading older than MaxAge")
	}
	now = at(20)
	s.Retain(func(n string) bool { return n != "n1" })
	if _, ok := s.Node("n1"); ok {
		t.Error("a removed node is still served")
	}
}

func TestStorePods(t *testing.T) {
	s := &Store{Now: func() time.Time { return at(30) }}
	web := ContainerKey{"default", "web", "web"}
	side := ContainerKey{"default", "web", "sidecar"}
	dns := ContainerKey{"kube-system", "dns", "dns"}
	started := at(-100)
	s.Add("n1", scrape(nil, map[ContainerKey]Sample{
		web: {CPU: 1, Memory: 10, Time: at(0), Start: started},
		dns: {CPU: 5, Memory: 30, Time: at(0), Start: started},
	}))
	s.Add("n1", scrape(nil, map[ContainerKey]Sample{
		web:  {CPU: 1.5, Memory: 11, Time: at(10), Start: started},
		side: {CPU: 1, Memory: 20, Time: at(10), Start: started}, // first sample: no rate yet
		dns:  {CPU: 6, Memory: 31, Time: at(10), Start: started},
	}))
	pods := s.Pods("")
	if len(pods) != 1 || pods[0].Name != "dns" {
		t.Fatalf("pods = %+v, want only dns (web has a container without a rate)", pods)
	}
	if c := pods[0].Containers; len(c) != 1 || c[0].NanoCores != 100_000_000 || c[0].Memory != 31 {
		t.Errorf("dns containers = %+v", c)
	}
	s.Add("n1", scrape(nil, map[ContainerKey]Sample{
		web:  {CPU: 2.5, Memory: 12, Time: at(20), Start: started},
		side: {CPU: 1.1, Memory: 21, Time: at(20), Start: started},
		// dns is gone from the node: forgotten.
	}))
	pods = s.Pods("default")
	if len(pods) != 1 || pods[0].Name != "web" || len(pods[0].Containers) != 2 {
		t.Fatalf("pods = %+v, want web with two containers", pods)
	}
	if c := pods[0].Containers; c[0].Name != "sidecar" || c[0].NanoCores != 10_000_000 || c[1].Name != "web" || c[1].NanoCores != 100_000_000 {
		t.Errorf("web containers = %+v", c)
	}
	if len(s.Pods("kube-system")) != 0 {
		t.Error("a pod that left the scrape is still served")
	}
	if _, ok := s.Pod("default", "web"); !ok {
		t.Error("Pod(default, web) not found")
	}
}

func TestStoreRestartDropsHistory(t *testing.T) {
	s := &Store{Now: func() time.Time { return at(60) }}
	k := ContainerKey{"default", "web", "web"}
	s.Add("n1", scrape(nil, map[ContainerKey]Sample{k: {CPU: 50, Time: at(0), Start: at(-10)}}))
	// Restarted: a new start time and a counter from zero.
	s.Add("n1", scrape(nil, map[ContainerKey]Sample{k: {CPU: 1, Time: at(15), Start: at(10)}}))
	if pods := s.Pods(""); len(pods) != 0 {
		t.Fatalf("a rate across a restart: %+v", pods)
	}
	s.Add("n1", scrape(nil, map[ContainerKey]Sample{k: {CPU: 4, Time: at(30), Start: at(10)}}))
	pods := s.Pods("")
	if len(pods) != 1 || pods[0].Containers[0].NanoCores != 200_000_000 {
		t.Fatalf("pods = %+v, want 0.2 cores after the restart", pods)
	}
	// A node counter that goes back (kubelet restart) drops history too.
	s.Add("n1", scrape(&Sample{CPU: 10, Time: at(0)}, nil))
	s.Add("n1", scrape(&Sample{CPU: 5, Time: at(15)}, nil))
	if u, ok := s.Node("n1"); ok {
		t.Errorf("a negative rate: %+v", u)
	}
}

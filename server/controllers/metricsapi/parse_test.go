package metricsapi

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseResource(t *testing.T) {
	f, err := os.Open("testdata/resource.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc, err := ParseResource(f)
	if err != nil {
		t.Fatal(err)
	}
	if sc.Node == nil {
		t.Fatal("no node sample")
	}
	if want := (Sample{CPU: 1234.5, Memory: 1 << 30, Time: time.UnixMilli(1764582002000)}); *sc.Node != want {
		t.Errorf("node = %+v, want %+v", *sc.Node, want)
	}
	want := map[ContainerKey]Sample{
		{"default", "web", "web"}:       {CPU: 0.5, Memory: 10 << 20, Time: time.UnixMilli(1764582000000), Start: time.Unix(1764581900, 0)},
		{"default", "web", "sidecar"}:   {CPU: 0.25, Memory: 2 << 20, Time: time.UnixMilli(1764582000000), Start: time.Unix(1764581900, 0)},
		{"kube-system", "dns-1", "dns"}: {CPU: 2, Memory: 30 << 20, Time: time.UnixMilli(1764582001000), Start: time.Unix(1764581800, 0)},
	}
	if len(sc.Containers) != len(want) {
		t.Errorf("containers = %v, want %v (one without memory left out)", sc.Containers, want)
	}
	for k, w := range want {
		got, ok := sc.Containers[k]
		if !ok || got.CPU != w.CPU || got.Memory != w.Memory || !got.Time.Equal(w.Time) || !got.Start.Equal(w.Start) {
			t.Errorf("container %v = %+v, want %+v", k, got, w)
		}
	}
}

func TestParseResourceWithoutTimestampsOrNode(t *testing.T) {
	sc, err := ParseResource(strings.NewReader("node_cpu_usage_seconds_total 1\nnode_memory_working_set_bytes 2\n"))
	if err != nil {
		t.Fatal(err)
	}
	if sc.Node != nil || len(sc.Containers) != 0 {
		t.Errorf("readings without timestamps were kept: %+v", sc)
	}
}

func TestParseResourceMalformed(t *testing.T) {
	if _, err := ParseResource(strings.NewReader("node_cpu_usage_seconds_total{ 1\n")); err == nil || !strings.Contains(err.Error(), "parse resource metrics") {
		t.Errorf("err = %v, want a parse error", err)
	}
}

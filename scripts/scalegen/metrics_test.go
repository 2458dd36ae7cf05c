package main

import (
	"math"
	"strings"
	"testing"
)

const scrapeBefore = `# HELP apiserver_request_duration_seconds [STABLE] Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component.
# TYPE apiserver_request_duration_seconds histogram
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="binding",verb="POST",version="v1",le="0.1"} 10
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="binding",verb="POST",version="v1",le="1"} 10
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="binding",verb="POST",version="v1",le="+Inf"} 10
apiserver_request_duration_seconds_sum{component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="binding",verb="POST",version="v1"} 0.5
apiserver_request_duration_seconds_count{component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="binding",verb="POST",version="v1"} 10
`

// After the window: 100 more bindings, 90 of them under 0.1 s and 10 between
// 0.1 and 1 s; 4 pod GETs, one of them slower than the last finite bound;
// watches, which are excluded.
const scrapeAfter = `# TYPE apiserver_request_duration_seconds histogram
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="binding",verb="POST",version="v1",le="0.1"} 100
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="binding",verb="POST",version="v1",le="1"} 110
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="binding",verb="POST",version="v1",le="+Inf"} 110
apiserver_request_duration_seconds_sum{component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="binding",verb="POST",version="v1"} 9
apiserver_request_duration_seconds_count{component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="binding",verb="POST",version="v1"} 110
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="",verb="GET",version="v1",le="0.1"} 3
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="",verb="GET",version="v1",le="1"} 3
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="",verb="GET",version="v1",le="+Inf"} 4
apiserver_request_duration_seconds_sum{component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="",verb="GET",version="v1"} 5
apiserver_request_duration_seconds_count{component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="",verb="GET",version="v1"} 4
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="WATCH",version="v1",le="0.1"} 0
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="WATCH",version="v1",le="1"} 0
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="WATCH",version="v1",le="+Inf"} 7
apiserver_request_duration_seconds_sum{component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="WATCH",version="v1"} 700
apiserver_request_duration_seconds_count{component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="WATCH",version="v1"} 7
`

func TestWindowQuantiles(t *testing.T) {
	before, err := parseCalls(strings.NewReader(scrapeBefore))
	if err != nil {
		t.Fatal(err)
	}
	after, err := parseCalls(strings.NewReader(scrapeAfter))
	if err != nil {
		t.Fatal(err)
	}
	window := after.sub(before)

	mut := window.merge(mutatingVerbs)
	if mut.count != 100 {
		t.Fatalf("mutating calls in the window = %d, want 100 (the earlier 10 subtracted)", mut.count)
	}
	// Rank 50 of 90 in [0, 0.1]: 0.1*50/90.
	if got, want := mut.quantile(0.50), 0.1*50/90; math.Abs(got-want) > 1e-9 {
		t.Errorf("p50 = %v, want %v", got, want)
	}
	// Rank 99 is the 9th of the 10 in (0.1, 1]: 0.1 + 0.9*9/10.
	if got, want := mut.quantile(0.99), 0.1+0.9*9/10; math.Abs(got-want) > 1e-9 {
		t.Errorf("p99 = %v, want %v", got, want)
	}

	read := window.merge(readVerbs)
	if read.count != 4 {
		t.Fatalf("read calls = %d, want 4 (WATCH excluded)", read.count)
	}
	if got := read.quantile(0.99); got != 1 {
		t.Errorf("p99 in the +Inf bucket = %v, want the last finite bound 1", got)
	}
	if got := window.worst(mutatingVerbs, 50); got != "POST pods/binding 910 ms (n=100)" {
		t.Errorf("worst mutating = %q", got)
	}
	if got := window.worst(readVerbs, 50); got != "none" {
		t.Errorf("worst read with fewer than 50 calls = %q, want none", got)
	}
	if got := (histogram{}).quantile(0.5); !math.IsNaN(got) {
		t.Errorf("quantile of no calls = %v, want NaN", got)
	}
}

func TestParseCallsWithoutTheMetric(t *testing.T) {
	if _, err := parseCalls(strings.NewReader("# TYPE up gauge\nup 1\n")); err == nil {
		t.Fatal("a scrape without apiserver_request_duration_seconds was accepted")
	}
}

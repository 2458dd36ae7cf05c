package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/client-go/rest"
)

// mutatingVerbs and readVerbs are the verbs of upstream's API call latency
// SLIs (WATCH and CONNECT are long-running and excluded).
var (
	mutatingVerbs = map[string]bool{"POST": true, "PUT": true, "PATCH": true, "APPLY": true, "DELETE": true}
	readVerbs     = map[string]bool{"GET": true, "LIST": true}
)

// histogram is one cumulative histogram: counts[i] requests took at most
// bounds[i] seconds (the last bound is +Inf).
type histogram struct {
	bounds []float64
	counts []uint64
	count  uint64
}

// quantile estimates the q-quantile in seconds the way PromQL's
// histogram_quantile does: linear inside the bucket that holds the rank,
// the highest finite bound when the rank falls in the +Inf bucket, NaN for
// an empty histogram.
func (h histogram) quantile(q float64) float64 {
	if h.count == 0 {
		return math.NaN()
	}
	rank := q * float64(h.count)
	for i, c := range h.counts {
		if float64(c) < rank {
			continue
		}
		if math.IsInf(h.bounds[i], 1) {
			if i == 0 {
				return math.NaN()
			}
			return h.bounds[i-1]
		}
		lo, below := 0.0, uint64(0)
		if i > 0 {
			lo, below = h.bounds[i-1], h.counts[i-1]
		}
		if c == below {
			return h.bounds[i]
		}
		return lo + (h.bounds[i]-lo)*(rank-float64(below))/float64(c-below)
	}
	return h.bounds[len(h.bounds)-1]
}

// add adds o's counts to h (same bounds, or h empty).
func (h *histogram) add(o histogram) {
	if h.bounds == nil {
		h.bounds, h.counts = slices.Clone(o.bounds), make([]uint64, len(o.counts))
	}
	for i := range h.counts {
		h.counts[i] += o.counts[i]
	}
	h.count += o.count
}

// callKey is one (verb, resource[/subresource]) pair.
type callKey struct{ verb, resource string }

// calls is apiserver_request_duration_seconds summed per callKey.
type calls map[callKey]histogram

// sub is c minus an earlier scrape.
func (c calls) sub(before calls) calls {
	out := calls{}
	for k, h := range c {
		d := histogram{bounds: h.bounds, counts: slices.Clone(h.counts), count: h.count}
		if b, ok := before[k]; ok {
			for i := range d.counts {
				d.counts[i] -= b.counts[i]
			}
			d.count -= b.count
		}
		if d.count > 0 {
			out[k] = d
		}
	}
	return out
}

// merge sums the pairs whose verb is in verbs.
func (c calls) merge(verbs map[string]bool) histogram {
	var h histogram
	for k, v := range c {
		if verbs[k.verb] {
			h.add(v)
		}
	}
	return h
}

// worst names the pair with the highest p99 among those with verbs in
// verbs and at least min requests, as "VERB resource p99 ms (n)".
func (c calls) worst(verbs map[string]bool, min uint64) string {
	best, p99 := "none", -1.0
	for k, v := range c {
		if !verbs[k.verb] || v.count < min {
			continue
		}
		if q := v.quantile(0.99); q > p99 {
			best, p99 = fmt.Sprintf("%s %s %.0f ms (n=%d)", k.verb, k.resource, 1000*q, v.count), q
		}
	}
	return best
}

// parseCalls reads apiserver_request_duration_seconds out of a Prometheus
// text exposition.
func parseCalls(r io.Reader) (calls, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse /metrics: %w", err)
	}
	fam, ok := families["apiserver_request_duration_seconds"]
	if !ok {
		return nil, fmt.Errorf("/metrics has no apiserver_request_duration_seconds")
	}
	out := calls{}
	for _, m := range fam.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		k := callKey{verb: labels["verb"], resource: labels["resource"]}
		if sub := labels["subresource"]; sub != "" {
			k.resource += "/" + sub
		}
		hm := m.GetHistogram()
		var h histogram
		for _, b := range hm.GetBucket() {
			if math.IsInf(b.GetUpperBound(), 1) {
				continue // added below from the sample count
			}
			h.bounds = append(h.bounds, b.GetUpperBound())
			h.counts = append(h.counts, b.GetCumulativeCount())
		}
		h.bounds = append(h.bounds, math.Inf(1))
		h.counts = append(h.counts, hm.GetSampleCount())
		h.count = hm.GetSampleCount()
		sum := out[k]
		sum.add(h)
		out[k] = sum
	}
	return out, nil
}

// newScraper returns a function that reads the apiserver's /metrics with
// the kubeconfig's credentials.
func newScraper(rc *rest.Config) (func(context.Context) (calls, error), error) {
	hc, err := rest.HTTPClientFor(rc)
	if err != nil {
		return nil, err
	}
	url := strings.TrimSuffix(rc.Host, "/") + "/metrics"
	return func(ctx context.Context) (calls, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", "text/plain")
		resp, err := hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("scrape %s: %w", url, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("scrape %s: %s", url, resp.Status)
		}
		return parseCalls(resp.Body)
	}, nil
}

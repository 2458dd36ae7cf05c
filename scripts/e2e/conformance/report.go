// Package conformance runs the upstream conformance suite on a 2-node
// kedge cluster in e2e test hosts (TestConformance, started by
// scripts/conformance) and summarises ginkgo's JSON reports.
package conformance

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

// spec is what a ginkgo JSON report says about one spec (the fields used).
type spec struct {
	ContainerHierarchyTexts []string
	LeafNodeText            string
	LeafNodeType            string
	State                   string
	LeafNodeLabels          []string
	RunTime                 time.Duration
	Failure                 struct {
		Message  string
		Location struct {
			FileName   string
			LineNumber int
		}
	}
}

// Name is the spec's full text, as ginkgo prints it.
func (s spec) Name() string {
	return strings.TrimSpace(strings.Join(append(append([]string{}, s.ContainerHierarchyTexts...), s.LeafNodeText), " "))
}

// Result is the outcome of the specs that were selected to run.
type Result struct {
	Passed, Failed []spec
	Skipped        []spec // skipped at run time (Skip with a reason) or by the skip list
	// filtered are the [Conformance] specs a run's filters left out, by name.
	filtered map[string]spec
}

// Skip is one entry of the skip list: specs whose text matches Pattern do
// not run, for Reason.
type Skip struct {
	Pattern *regexp.Regexp
	Reason  string
}

// ReadSkips reads a skip list: "REGEX => reason" lines, # comments.
func ReadSkips(path string) ([]Skip, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var skips []Skip
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		pat, reason, ok := strings.Cut(line, " => ")
		if !ok || strings.TrimSpace(reason) == "" {
			return nil, fmt.Errorf("%s:%d: want REGEX => reason", path, n)
		}
		re, err := regexp.Compile(strings.TrimSpace(pat))
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		skips = append(skips, Skip{Pattern: re, Reason: strings.TrimSpace(reason)})
	}
	return skips, sc.Err()
}

// SkipPattern is the ginkgo --skip regex of skips.
func SkipPattern(skips []Skip) string {
	var p []string
	for _, s := range skips {
		p = append(p, "(?:"+s.Pattern.String()+")")
	}
	return strings.Join(p, "|")
}

// ApplySkips counts as skipped, with their reason, the [Conformance] specs
// the runs left out because of skips and that focus (if set) selects.
func (r *Result) ApplySkips(skips []Skip, focus *regexp.Regexp) {
	for name, sp := range r.filtered {
		if focus != nil && !focus.MatchString(name) {
			continue
		}
		for _, s := range skips {
			if s.Pattern.MatchString(name) {
				sp.Failure.Message = "not run: " + s.Reason
				r.Skipped = append(r.Skipped, sp)
				break
			}
		}
	}
	r.filtered = nil
}

// ReadReport adds the specs of the ginkgo JSON report at path to r. Specs
// that the run's filters left out are not counted; so that two runs (the
// parallel and the serial one) add up.
func (r *Result) ReadReport(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return r.read(f)
}

func (r *Result) read(in io.Reader) error {
	var suites []struct{ SpecReports []spec }
	if err := json.NewDecoder(in).Decode(&suites); err != nil {
		return fmt.Errorf("ginkgo report: %w", err)
	}
	for _, s := range suites {
		for _, sp := range s.SpecReports {
			if sp.LeafNodeType != "" && sp.LeafNodeType != "It" {
				continue // suite setup and teardown nodes
			}
			switch sp.State {
			case "passed":
				r.Passed = append(r.Passed, sp)
			case "skipped":
				if sp.Failure.Message != "" {
					r.Skipped = append(r.Skipped, sp)
				} else if slices.Contains(sp.LeafNodeLabels, "Conformance") {
					if r.filtered == nil {
						r.filtered = map[string]spec{}
					}
					r.filtered[sp.Name()] = sp
				}
			case "pending":
			default: // failed, panicked, timedout, interrupted, aborted
				r.Failed = append(r.Failed, sp)
			}
		}
	}
	return nil
}

// Print writes the result line "N passed, M failed, K skipped", then every
// failure (with where it failed) and every skip with its reason.
func (r *Result) Print(w io.Writer, took time.Duration) {
	fmt.Fprintf(w, "\nconformance: %d passed, %d failed, %d skipped in %s\n", len(r.Passed), len(r.Failed), len(r.Skipped), took.Round(time.Second))
	byName := func(l []spec) []spec {
		sort.Slice(l, func(i, j int) bool { return l[i].Name() < l[j].Name() })
		return l
	}
	for _, s := range byName(r.Failed) {
		msg, _, _ := strings.Cut(strings.TrimSpace(s.Failure.Message), "\n")
		fmt.Fprintf(w, "FAILED  %s\n        %s (%s:%d)\n", s.Name(), msg, s.Failure.Location.FileName, s.Failure.Location.LineNumber)
	}
	for _, s := range byName(r.Skipped) {
		msg, _, _ := strings.Cut(strings.TrimSpace(s.Failure.Message), "\n")
		fmt.Fprintf(w, "SKIPPED %s\n        %s\n", s.Name(), msg)
	}
}

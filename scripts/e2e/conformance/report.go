// Package conformance runs the upstream conformance suite on a 2-node
// kedge cluster in e2e test hosts (TestConformance, started by
// scripts/conformance) and summarises ginkgo's JSON reports.
package conformance

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
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
	Skipped        []spec // skipped at run time (Skip with a reason)
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

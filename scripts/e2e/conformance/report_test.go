package conformance

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// A report of a parallel run: setup nodes and filtered-out specs do not
// count; a run-time skip counts with its reason; a failure names where.
const sampleReport = `[{"SuiteDescription":"Kubernetes e2e suite","SpecReports":[
 {"LeafNodeType":"SynchronizedBeforeSuite","State":"passed"},
 {"ContainerHierarchyTexts":["[sig-network] DNS"],"LeafNodeText":"should provide DNS for the cluster [Conformance]","LeafNodeType":"It","State":"passed","RunTime":12000000000},
 {"ContainerHierarchyTexts":["[sig-node] Pods"],"LeafNodeText":"should be updated [Conformance]","LeafNodeType":"It","State":"failed","Failure":{"Message":"timed out\nmore","Location":{"FileName":"pods.go","LineNumber":42}}},
 {"ContainerHierarchyTexts":["[sig-apps] Daemon set [Serial]"],"LeafNodeText":"should rollback [Conformance]","LeafNodeType":"It","State":"skipped"},
 {"ContainerHierarchyTexts":["[sig-node] ImageVolume"],"LeafNodeText":"should succeed with pod and pull policy of Always [Conformance]","LeafNodeType":"It","LeafNodeLabels":["Conformance"],"State":"skipped"},
 {"ContainerHierarchyTexts":["[sig-storage] NFS"],"LeafNodeText":"should mount [Conformance]","LeafNodeType":"It","State":"skipped","Failure":{"Message":"Only supported for providers [gce]"}}
]}]`

func TestResultCountsSelectedSpecs(t *testing.T) {
	var r Result
	if err := r.read(strings.NewReader(sampleReport)); err != nil {
		t.Fatal(err)
	}
	if len(r.Passed) != 1 || len(r.Failed) != 1 || len(r.Skipped) != 1 {
		t.Fatalf("passed %d, failed %d, skipped %d; want 1, 1, 1", len(r.Passed), len(r.Failed), len(r.Skipped))
	}
	var out bytes.Buffer
	r.Print(&out, 90*time.Second)
	for _, want := range []string{
		"conformance: 1 passed, 1 failed, 1 skipped in 1m30s",
		"FAILED  [sig-node] Pods should be updated [Conformance]\n        timed out (pods.go:42)",
		"SKIPPED [sig-storage] NFS should mount [Conformance]\n        Only supported for providers [gce]",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestResultRejectsBadReport(t *testing.T) {
	var r Result
	if err := r.read(strings.NewReader("not json")); err == nil {
		t.Fatal("a broken report was accepted")
	}
}

// A [Conformance] spec left out by the skip list is reported as skipped
// with the list's reason, unless the focus did not select it anyway.
func TestSkipListSpecsAreReportedWithTheirReason(t *testing.T) {
	p := filepath.Join(t.TempDir(), "skips.txt")
	os.WriteFile(p, []byte("# comment\nImageVolume should succeed with pod and pull policy of Always => needs a registry\n"), 0o644)
	skips, err := ReadSkips(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := SkipPattern(skips); got != "(?:ImageVolume should succeed with pod and pull policy of Always)" {
		t.Fatalf("skip pattern %q", got)
	}
	for _, c := range []struct {
		focus string
		want  int
	}{{"", 2}, {"ImageVolume", 2}, {"DNS", 1}} { // the NFS run-time skip, and ImageVolume when focused
		var r Result
		if err := r.read(strings.NewReader(sampleReport)); err != nil {
			t.Fatal(err)
		}
		var focus *regexp.Regexp
		if c.focus != "" {
			focus = regexp.MustCompile(c.focus)
		}
		r.ApplySkips(skips, focus)
		if len(r.Skipped) != c.want {
			t.Errorf("focus %q: %d skipped", c.focus, len(r.Skipped))
		}
		found := false
		for _, s := range r.Skipped {
			if s.Failure.Message == "not run: needs a registry" {
				found = true
			}
		}
		if found != (c.focus != "DNS") {
			t.Errorf("focus %q: ImageVolume skipped with the reason = %v", c.focus, found)
		}
	}
	os.WriteFile(p, []byte("no arrow here\n"), 0o644)
	if _, err := ReadSkips(p); err == nil || !strings.Contains(err.Error(), "want REGEX => reason") {
		t.Fatalf("a bad line: %v", err)
	}
}

package conformance

import (
	"bytes"
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

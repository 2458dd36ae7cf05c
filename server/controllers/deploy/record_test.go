package deploy

import (
	"testing"

	"k8s.io/client-go/kubernetes/fake"
)

// TestRecordRoundTrip: a saved record lists back with its objects, error
// and checksum, updates in place and is deleted.
func TestRecordRoundTrip(t *testing.T) {
	ctx := t.Context()
	c := fake.NewClientset()
	objs := []Ref{{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "kube-system", Name: "coredns"}, {APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole", Name: "system:coredns"}}
	r := &record{Server: "s1", File: "coredns.yaml", Objects: objs, Checksum: "abc", Error: "boom"}
	if err := r.save(ctx, c); err != nil {
		t.Fatal(err)
	}
	other := &record{Server: "s2", File: "coredns.yaml", Objects: objs[:1]}
	if err := other.save(ctx, c); err != nil {
		t.Fatal(err)
	}
	recs, err := listRecords(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 {
		t.Fatalf("listed %d records, want 2", len(recs))
	}
	var got *record
	for _, rec := range recs {
		if rec.Server == "s1" {
			got = rec
		}
	}
	if got == nil || got.File != "coredns.yaml" || got.Checksum != "abc" || got.Error != "boom" || len(got.Objects) != 2 || got.Objects[1] != objs[1] {
		t.Fatalf("listed %+v, want %+v", got, r)
	}
	got.Error, got.Objects = "", nil
	if err := got.save(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got.cm.Annotations[ErrorAnnotation] != "" {
		t.Fatalf("error annotation kept after a clean apply: %v", got.cm.Annotations)
	}
	if err := got.delete(ctx, c); err != nil {
		t.Fatal(err)
	}
	if recs, _ := listRecords(ctx, c); len(recs) != 1 || recs[0].Server != "s2" {
		t.Fatalf("after delete: %+v", recs)
	}
}

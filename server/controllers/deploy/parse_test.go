package deploy

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // Ref.String of each object
		err  string
	}{
		{"empty", "", nil, ""},
		{"comments and separators only", "# nothing\n---\n---\n", nil, ""},
		{"two documents", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: x\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: system:b\n",
			[]string{"ConfigMap/x/a", "ClusterRole/system:b"}, ""},
		{"leading separator", "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: ns1}\n", []string{"Namespace/ns1"}, ""},
		{"json", `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"j"}}`, []string{"Namespace/j"}, ""},
		{"list", "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Namespace\n  metadata: {name: l1}\n- apiVersion: v1\n  kind: Namespace\n  metadata: {name: l2}\n",
			[]string{"Namespace/l1", "Namespace/l2"}, ""},
		{"bad yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\nkind: [unclosed\n", nil, "document 2:"},
		{"missing kind", "apiVersion: v1\nmetadata: {name: a}\n", nil, "document 1: missing kind"},
		{"missing apiVersion", "kind: ConfigMap\nmetadata: {name: a}\n", nil, "document 1: missing apiVersion"},
		{"bad apiVersion", "apiVersion: a/b/c\nkind: ConfigMap\nmetadata: {name: a}\n", nil, `apiVersion "a/b/c"`},
		{"missing name", "apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: a-}\n", nil, "document 1: ConfigMap: missing metadata.name"},
		{"missing metadata", "apiVersion: v1\nkind: ConfigMap\n", nil, "ConfigMap: missing metadata"},
		{"bad list item", "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Namespace\n  metadata: {}\n", nil, "document 1, item 1: Namespace: missing metadata.name"},
		{"not an object", "- a\n- b\n", nil, "document 1:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := Parse([]byte(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range objs {
				got = append(got, RefOf(o).String())
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRefKeyIgnoresVersion(t *testing.T) {
	a := Ref{APIVersion: "apps/v1beta2", Kind: "Deployment", Namespace: "n", Name: "d"}
	b := Ref{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "n", Name: "d"}
	if a.Key() != b.Key() {
		t.Fatalf("%q != %q", a.Key(), b.Key())
	}
	c := Ref{APIVersion: "extensions/v1beta1", Kind: "Deployment", Namespace: "n", Name: "d"}
	if a.Key() == c.Key() {
		t.Fatalf("different groups share the key %q", a.Key())
	}
}

func TestRecordName(t *testing.T) {
	a := RecordName("Server-1", "my_app.yaml")
	if !strings.HasPrefix(a, "kedge-manifest-server-1-my-app-") {
		t.Fatalf("RecordName = %q", a)
	}
	if b := RecordName("server-1", "my-app.yaml"); a == b {
		t.Fatalf("different files share the record %q", a)
	}
	long := RecordName(strings.Repeat("s", 300), strings.Repeat("f", 300)+".yaml")
	if len(long) > 253 {
		t.Fatalf("len(RecordName) = %d > 253", len(long))
	}
}

func TestStale(t *testing.T) {
	a := Ref{APIVersion: "v1", Kind: "ConfigMap", Namespace: "n", Name: "a"}
	b := Ref{APIVersion: "v1", Kind: "ConfigMap", Namespace: "n", Name: "b"}
	got := stale([]Ref{a, b}, map[string]bool{a.Key(): true})
	if len(got) != 1 || got[0] != b {
		t.Fatalf("stale = %v, want [%v]", got, b)
	}
}

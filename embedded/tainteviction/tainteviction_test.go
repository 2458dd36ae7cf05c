package tainteviction

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestHideUnreachable(t *testing.T) {
	unreachable := corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute}
	notReady := corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute}
	unreachableNoSchedule := corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoSchedule}
	user := corev1.Taint{Key: "maintenance", Value: "now", Effect: corev1.TaintEffectNoExecute}
	cases := []struct {
		name        string
		annotations map[string]string
		taints      []corev1.Taint
		want        []corev1.Taint
	}{
		{"default hides unreachable NoExecute", nil, []corev1.Taint{unreachable, unreachableNoSchedule, user},
			[]corev1.Taint{unreachableNoSchedule, user}},
		{"not-ready still evicts", nil, []corev1.Taint{notReady}, []corev1.Taint{notReady}},
		{"opted in keeps it", map[string]string{EvictWhenUnreachable: "true"}, []corev1.Taint{unreachable}, []corev1.Taint{unreachable}},
		{"false is the default", map[string]string{EvictWhenUnreachable: "false"}, []corev1.Taint{unreachable}, []corev1.Taint{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", Annotations: tc.annotations},
				Spec: corev1.NodeSpec{Taints: tc.taints}}
			original := append([]corev1.Taint(nil), tc.taints...)
			out, err := HideUnreachable(node)
			if err != nil {
				t.Fatal(err)
			}
			got := out.(*corev1.Node).Spec.Taints
			if len(got) != len(tc.want) {
				t.Fatalf("taints = %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("taints = %v, want %v", got, tc.want)
				}
			}
			for i := range original {
				if tc.taints[i] != original[i] {
					t.Fatalf("the input's taint slice was changed in place: %v", tc.taints)
				}
			}
		})
	}
	if out, _ := HideUnreachable("not a node"); out != "not a node" {
		t.Fatalf("non-node changed: %v", out)
	}
}

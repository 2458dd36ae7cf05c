package rbac

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// wanted is every role and binding Ensure keeps.
var wanted = []struct {
	role    func() *rbacv1.ClusterRole
	binding func() *rbacv1.ClusterRoleBinding
}{
	{NodeNetworkRole, NodeNetworkBinding},
	{ClusterDNSRole, ClusterDNSBinding},
	{LocalStorageRole, LocalStorageBinding},
}

// checkAll fails unless the cluster holds exactly what Ensure wants.
func checkAll(t *testing.T, c kubernetes.Interface) {
	t.Helper()
	ctx := t.Context()
	for _, w := range wanted {
		want, wantB := w.role(), w.binding()
		role, err := c.RbacV1().ClusterRoles().Get(ctx, want.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !equality.Semantic.DeepEqual(role.Rules, want.Rules) || !equality.Semantic.DeepEqual(role.Labels, want.Labels) {
			t.Errorf("clusterrole %s: rules %+v labels %v, want %+v %v", want.Name, role.Rules, role.Labels, want.Rules, want.Labels)
		}
		b, err := c.RbacV1().ClusterRoleBindings().Get(ctx, wantB.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if b.RoleRef != wantB.RoleRef || !equality.Semantic.DeepEqual(b.Subjects, wantB.Subjects) || !equality.Semantic.DeepEqual(b.Labels, wantB.Labels) {
			t.Errorf("clusterrolebinding %s: %+v %+v, want %+v %+v", wantB.Name, b.RoleRef, b.Subjects, wantB.RoleRef, wantB.Subjects)
		}
	}
	p, err := c.AdmissionregistrationV1().ValidatingAdmissionPolicies().Get(ctx, LocalStoragePolicyName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !equality.Semantic.DeepEqual(p.Spec, LocalStoragePolicy().Spec) {
		t.Errorf("policy spec %+v, want %+v", p.Spec, LocalStoragePolicy().Spec)
	}
	pb, err := c.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Get(ctx, LocalStoragePolicyName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !equality.Semantic.DeepEqual(pb.Spec, LocalStoragePolicyBinding().Spec) {
		t.Errorf("policy binding spec %+v", pb.Spec)
	}
}

func TestEnsureCreates(t *testing.T) {
	c := fake.NewClientset()
	if err := Ensure(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	checkAll(t, c)
	// The grant to delete volumes comes after the policy that narrows it.
	var order []string
	for _, a := range c.Actions() {
		if ca, ok := a.(k8stesting.CreateAction); ok {
			order = append(order, a.GetResource().Resource+"/"+ca.GetObject().(metav1.Object).GetName())
		}
	}
	policy := slices.Index(order, "validatingadmissionpolicies/"+LocalStoragePolicyName)
	grant := slices.Index(order, "clusterrolebindings/"+LocalStorage)
	if policy < 0 || grant < 0 || grant < policy {
		t.Errorf("creates %v: want the policy before the local storage binding", order)
	}
	// Ensure is idempotent.
	if err := Ensure(t.Context(), c); err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	checkAll(t, c)
}

func TestEnsureRepairsDrift(t *testing.T) {
	ctx := t.Context()
	c := fake.NewClientset()
	if err := Ensure(ctx, c); err != nil {
		t.Fatal(err)
	}
	// Someone widens a role, adds a subject, drops labels, disables the policy.
	role, _ := c.RbacV1().ClusterRoles().Get(ctx, NodeNetwork, metav1.GetOptions{})
	role.Rules[0].Verbs = []string{"*"}
	role.Labels = nil
	if _, err := c.RbacV1().ClusterRoles().Update(ctx, role, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	b, _ := c.RbacV1().ClusterRoleBindings().Get(ctx, ClusterDNS, metav1.GetOptions{})
	b.Subjects = append(b.Subjects, rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "mallory"})
	if _, err := c.RbacV1().ClusterRoleBindings().Update(ctx, b, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	p, _ := c.AdmissionregistrationV1().ValidatingAdmissionPolicies().Get(ctx, LocalStoragePolicyName, metav1.GetOptions{})
	p.Spec.Validations = nil
	if _, err := c.AdmissionregistrationV1().ValidatingAdmissionPolicies().Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	pb, _ := c.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Get(ctx, LocalStoragePolicyName, metav1.GetOptions{})
	pb.Spec.ValidationActions = nil
	if _, err := c.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Update(ctx, pb, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := Ensure(ctx, c); err != nil {
		t.Fatal(err)
	}
	checkAll(t, c)
}

func TestEnsureReplacesBindingOfAnotherRole(t *testing.T) {
	ctx := t.Context()
	// A binding under our name that grants cluster-admin: its roleRef is
	// immutable, so it must be deleted and created again.
	c := fake.NewClientset(&rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: NodeNetwork},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: NodesGroup}},
	})
	c.PrependReactor("update", "clusterrolebindings", func(a k8stesting.Action) (bool, runtime.Object, error) {
		b := a.(k8stesting.UpdateAction).GetObject().(*rbacv1.ClusterRoleBinding)
		if b.RoleRef.Name != b.Name {
			return true, nil, errors.New("roleRef is immutable")
		}
		return false, nil, nil
	})
	if err := Ensure(ctx, c); err != nil {
		t.Fatal(err)
	}
	checkAll(t, c)
	deleted := false
	for _, a := range c.Actions() {
		if a.GetVerb() == "delete" && a.GetResource().Resource == "clusterrolebindings" {
			deleted = a.(k8stesting.DeleteAction).GetName() == NodeNetwork
		}
	}
	if !deleted {
		t.Error("the binding of another role was not deleted")
	}
}

func TestEnsureNoGrantWithoutPolicy(t *testing.T) {
	c := fake.NewClientset()
	c.PrependReactor("create", "validatingadmissionpolicies", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("admissionregistration.k8s.io/v1 is not served")
	})
	if err := Ensure(t.Context(), c); err == nil {
		t.Fatal("Ensure succeeded without the policy")
	}
	if _, err := c.RbacV1().ClusterRoleBindings().Get(t.Context(), LocalStorage, metav1.GetOptions{}); err == nil {
		t.Error("nodes may delete volumes although the policy narrowing it is missing")
	}
}

func TestRun(t *testing.T) {
	t.Run("ready after the first write, nil when cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		c := fake.NewClientset()
		r := &Reconciler{Client: c, Log: slog.New(slog.DiscardHandler)}
		readies := 0
		if err := r.Run(ctx, func() { readies++; cancel() }); err != nil {
			t.Fatalf("Run = %v", err)
		}
		if readies != 1 {
			t.Errorf("ready called %d times", readies)
		}
		checkAll(t, c)
	})
	t.Run("not ready while writes fail", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		c := fake.NewClientset()
		c.PrependReactor("*", "*", func(k8stesting.Action) (bool, runtime.Object, error) {
			cancel()
			return true, nil, errors.New("etcdserver: request timed out")
		})
		r := &Reconciler{Client: c, Log: slog.New(slog.DiscardHandler)}
		if err := r.Run(ctx, func() { t.Error("ready although nothing was written") }); err != nil {
			t.Fatalf("Run = %v, want nil (failures are logged and retried)", err)
		}
	})
}

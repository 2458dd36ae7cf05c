package rbac

import (
	"context"
	"fmt"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kedge/kedge/shared/localvolume"
)

// LocalStoragePolicyName names the admission policy and its binding
// (policy names are DNS subdomains, so no colon as in LocalStorage).
const LocalStoragePolicyName = "kedge-local-storage"

// LocalStoragePolicy returns the ValidatingAdmissionPolicy that narrows
// what LocalStorageRole grants: RBAC cannot say which volumes a node may
// delete, so this lets a node (group system:nodes) delete only a Released
// volume labelled localvolume.NodeLabel with its own name (a label the
// server's provisioner sets and nodes cannot change: they may not update
// volumes).
func LocalStoragePolicy() *admissionv1.ValidatingAdmissionPolicy {
	fail := admissionv1.Fail
	label := "'" + localvolume.NodeLabel + "'"
	return &admissionv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: LocalStoragePolicyName, Labels: labels()},
		Spec: admissionv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: &fail,
			MatchConstraints: &admissionv1.MatchResources{ResourceRules: []admissionv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionv1.RuleWithOperations{
					Operations: []admissionv1.OperationType{admissionv1.Delete},
					Rule:       admissionv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"persistentvolumes"}},
				},
			}}},
			MatchConditions: []admissionv1.MatchCondition{{
				Name: "nodes", Expression: "'" + NodesGroup + "' in request.userInfo.groups",
			}},
			Validations: []admissionv1.Validation{{
				Expression: "has(oldObject.metadata.labels) && " + label + " in oldObject.metadata.labels && " +
					"request.userInfo.username == 'system:node:' + oldObject.metadata.labels[" + label + "] && " +
					"has(oldObject.status.phase) && oldObject.status.phase == 'Released'",
				Message: "a node may delete only the released local-path volumes on itself",
				Reason:  ptr(metav1.StatusReasonForbidden),
			}},
		},
	}
}

// LocalStoragePolicyBinding enforces LocalStoragePolicy (deny).
func LocalStoragePolicyBinding() *admissionv1.ValidatingAdmissionPolicyBinding {
	return &admissionv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: LocalStoragePolicyName, Labels: labels()},
		Spec: admissionv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        LocalStoragePolicyName,
			ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny},
		},
	}
}

func ptr[T any](v T) *T { return &v }

// ensurePolicy creates LocalStoragePolicy and its binding or updates them
// to the wanted spec.
func ensurePolicy(ctx context.Context, c kubernetes.Interface) error {
	policies := c.AdmissionregistrationV1().ValidatingAdmissionPolicies()
	want := LocalStoragePolicy()
	cur, err := policies.Get(ctx, want.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if _, err := policies.Create(ctx, want, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create validatingadmissionpolicy %s: %w", want.Name, err)
		}
	case err != nil:
		return fmt.Errorf("get validatingadmissionpolicy %s: %w", want.Name, err)
	default:
		cur.Spec, cur.Labels = want.Spec, want.Labels
		if _, err := policies.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update validatingadmissionpolicy %s: %w", want.Name, err)
		}
	}
	bindings := c.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings()
	wantB := LocalStoragePolicyBinding()
	curB, err := bindings.Get(ctx, wantB.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if _, err := bindings.Create(ctx, wantB, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create validatingadmissionpolicybinding %s: %w", wantB.Name, err)
		}
	case err != nil:
		return fmt.Errorf("get validatingadmissionpolicybinding %s: %w", wantB.Name, err)
	default:
		curB.Spec, curB.Labels = wantB.Spec, wantB.Labels
		if _, err := bindings.Update(ctx, curB, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update validatingadmissionpolicybinding %s: %w", wantB.Name, err)
		}
	}
	return nil
}

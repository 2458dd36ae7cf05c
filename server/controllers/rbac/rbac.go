// Package rbac keeps the cluster roles kedge's own node components need
// beyond what the Node authorizer grants.
//
// Since Kubernetes 1.32 the Node authorizer lets a node read only its own
// Node object, but flannel's kube subnet manager on every node lists and
// watches all Nodes to learn the other nodes' subnets and VTEPs. The
// NodeNetwork role grants exactly that read access to group system:nodes;
// writes to Node objects stay limited by the NodeRestriction admission
// plugin (a node may change only its own Node).
//
// The node's cluster DNS (CoreDNS's kubernetes plugin in the agent) reads
// the cluster through the local caching endpoint as kube-proxy, whose
// system:node-proxier role covers Services and EndpointSlices but not the
// Namespaces the plugin also lists and watches; the ClusterDNS role grants
// user system:kube-proxy read access to those three.
//
// The LocalStorage role lets nodes list, watch and delete
// PersistentVolumes: a node's agent removes the directory of a released
// local-path volume on its disk and then the volume (agent/node/localstorage).
// The Node authorizer alone lets a node only get the volumes of its pods;
// the LocalStorage admission policy (volumepolicy.go) lets a node delete
// only its own released local-path volumes.
package rbac

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kedge/kedge/embedded/backoff"
	"github.com/kedge/kedge/embedded/component"
)

// NodeNetwork names the ClusterRole and its ClusterRoleBinding.
const NodeNetwork = "kedge:node-network"

// LocalStorage names the ClusterRole and ClusterRoleBinding for nodes'
// local-path volumes.
const LocalStorage = "kedge:local-storage"

// NodesGroup is the group of every node identity.
const NodesGroup = "system:nodes"

// ClusterDNS names the ClusterRole and ClusterRoleBinding of the nodes'
// cluster DNS; KubeProxyUser is the identity it runs as.
const (
	ClusterDNS    = "kedge:cluster-dns"
	KubeProxyUser = "system:kube-proxy"
)

// Reconciler creates or repairs kedge's cluster roles and bindings.
type Reconciler struct {
	Client kubernetes.Interface
	// Interval between repairs (default 5 minutes).
	Interval time.Duration
	Log      *slog.Logger
}

var _ component.Component = (*Reconciler)(nil)

// Name implements component.Component.
func (r *Reconciler) Name() string { return "rbac" }

// Run is ready after the first successful write and repairs drift every
// Interval until ctx ends. Failures are logged and retried.
func (r *Reconciler) Run(ctx context.Context, ready func()) error {
	interval := r.Interval
	if interval <= 0 {
		interval = 5 * time.Minute
	}
	retry := backoff.Backoff{Min: time.Second, Max: 30 * time.Second}
	for {
		wait := interval
		if err := Ensure(ctx, r.Client); err != nil {
			if ctx.Err() == nil {
				r.Log.Warn("update kedge cluster roles", "error", err)
			}
			wait = retry.Next()
		} else {
			ready()
			retry.Reset()
		}
		if !backoff.Sleep(ctx, wait) {
			return nil
		}
	}
}

// NodeNetworkRole lets nodes read all Nodes.
func NodeNetworkRole() *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: NodeNetwork, Labels: labels()},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list", "watch"},
		}},
	}
}

// NodeNetworkBinding binds NodeNetworkRole to every node.
func NodeNetworkBinding() *rbacv1.ClusterRoleBinding { return nodesBinding(NodeNetwork) }

// LocalStorageRole lets nodes read and delete PersistentVolumes.
func LocalStorageRole() *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: LocalStorage, Labels: labels()},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{""}, Resources: []string{"persistentvolumes"}, Verbs: []string{"get", "list", "watch", "delete"},
		}},
	}
}

// LocalStorageBinding binds LocalStorageRole to every node.
func LocalStorageBinding() *rbacv1.ClusterRoleBinding { return nodesBinding(LocalStorage) }

// nodesBinding binds the ClusterRole role to group system:nodes, under
// the role's name.
func nodesBinding(role string) *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role, Labels: labels()},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: NodesGroup}},
	}
}

// ClusterDNSRole lets the cluster DNS read what it answers from.
func ClusterDNSRole() *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: ClusterDNS, Labels: labels()},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"namespaces", "services"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"}},
		},
	}
}

// ClusterDNSBinding binds ClusterDNSRole to kube-proxy's identity.
func ClusterDNSBinding() *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: ClusterDNS, Labels: labels()},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: ClusterDNS},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: KubeProxyUser}},
	}
}

func labels() map[string]string {
	return map[string]string{"app.kubernetes.io/managed-by": "kedge"}
}

// Ensure creates the roles, bindings and the admission policy, or updates them to the wanted
// rules and subjects. A binding whose roleRef differs (immutable) is
// recreated.
func Ensure(ctx context.Context, c kubernetes.Interface) error {
	if err := ensure(ctx, c, NodeNetworkRole(), NodeNetworkBinding()); err != nil {
		return err
	}
	if err := ensure(ctx, c, ClusterDNSRole(), ClusterDNSBinding()); err != nil {
		return err
	}
	// The policy that narrows the nodes' PV deletes comes before the
	// grant, so nodes never hold the grant without it.
	if err := ensurePolicy(ctx, c); err != nil {
		return err
	}
	return ensure(ctx, c, LocalStorageRole(), LocalStorageBinding())
}

func ensure(ctx context.Context, c kubernetes.Interface, want *rbacv1.ClusterRole, wantB *rbacv1.ClusterRoleBinding) error {
	roles := c.RbacV1().ClusterRoles()
	cur, err := roles.Get(ctx, want.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if _, err := roles.Create(ctx, want, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create clusterrole %s: %w", want.Name, err)
		}
	case err != nil:
		return fmt.Errorf("get clusterrole %s: %w", want.Name, err)
	default:
		cur.Rules, cur.Labels = want.Rules, want.Labels
		if _, err := roles.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update clusterrole %s: %w", want.Name, err)
		}
	}

	bindings := c.RbacV1().ClusterRoleBindings()
	curB, err := bindings.Get(ctx, wantB.Name, metav1.GetOptions{})
	switch {
	case err == nil && curB.RoleRef != wantB.RoleRef:
		if err := bindings.Delete(ctx, wantB.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("replace clusterrolebinding %s: %w", wantB.Name, err)
		}
		fallthrough
	case apierrors.IsNotFound(err):
		if _, err := bindings.Create(ctx, wantB, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create clusterrolebinding %s: %w", wantB.Name, err)
		}
	case err != nil:
		return fmt.Errorf("get clusterrolebinding %s: %w", wantB.Name, err)
	default:
		curB.Subjects, curB.Labels = wantB.Subjects, wantB.Labels
		if _, err := bindings.Update(ctx, curB, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update clusterrolebinding %s: %w", wantB.Name, err)
		}
	}
	return nil
}

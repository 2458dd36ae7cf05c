// Package nodenetwork checks on a real server what node identities may do
// with Node objects: read all of them (kedge's node-network role, which
// flannel needs) and change only their own (NodeRestriction). One
// in-process server per test binary: the scheduler registers process-wide
// state.
package nodenetwork

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/kedge/kedge/agent/join"
	"github.com/kedge/kedge/server/controllers/rbac"
	"github.com/kedge/kedge/server/integration/harness"
)

// TestNodeNetworkRBAC: with kedge's node-network role a node identity may
// list and watch all Nodes (flannel's kube subnet manager needs it), and
// kube-proxy's identity what the nodes' cluster DNS reads (kedge's
// cluster-dns role); a node may still change only its own Node: patching another node's annotations
// or status is forbidden by NodeRestriction.
func TestNodeNetworkRBAC(t *testing.T) {
	ctx := t.Context()
	srv := harness.StartJoinable(t, harness.NewConfig(t, t.TempDir()))
	nodes := map[string]kubernetes.Interface{}
	var kubeProxy kubernetes.Interface
	for i, name := range []string{"net-1", "net-2"} {
		certs := srv.Join(t, join.Node{Name: name, Password: "pw-of-" + name, Addresses: []string{fmt.Sprintf("192.0.2.%d", 31+i)}})
		nodes[name] = srv.ClientAs(certs.KubeletClientCert, certs.KubeletClientKey)
		kubeProxy = srv.ClientAs(certs.KubeProxyCert, certs.KubeProxyKey)
		if _, err := nodes[name].CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("%s cannot register itself: %v", name, err)
		}
	}
	n1 := nodes["net-1"].CoreV1().Nodes()

	// The role is created by the server after the apiserver is ready.
	harness.WaitFor(t, 30*time.Second, "a node to list all Nodes", func() error {
		list, err := n1.List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		if len(list.Items) != 2 {
			return fmt.Errorf("listed %d nodes, want 2", len(list.Items))
		}
		return nil
	})
	w, err := n1.Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("node cannot watch Nodes: %v", err)
	}
	w.Stop()
	if _, err := n1.Get(ctx, "net-2", metav1.GetOptions{}); err != nil {
		t.Fatalf("node cannot get another Node: %v", err)
	}

	// Writes stay limited to the node's own object, the way flannel writes
	// (a strategic merge patch of the annotations through status).
	patch := []byte(`{"metadata":{"annotations":{"flannel.alpha.coreos.com/public-ip":"192.0.2.99"}}}`)
	if _, err := n1.Patch(ctx, "net-1", types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		t.Fatalf("node cannot annotate its own Node: %v", err)
	}
	for _, sub := range [][]string{nil, {"status"}} {
		if _, err := n1.Patch(ctx, "net-2", types.StrategicMergePatchType, patch, metav1.PatchOptions{}, sub...); !apierrors.IsForbidden(err) {
			t.Fatalf("node patched another node's Node %v: err = %v", sub, err)
		}
	}
	if err := n1.Delete(ctx, "net-2", metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("node deleted another node's Node: err = %v", err)
	}
	other, err := srv.Client.CoreV1().Nodes().Get(ctx, "net-2", metav1.GetOptions{})
	if err != nil || other.Annotations["flannel.alpha.coreos.com/public-ip"] != "" {
		t.Fatalf("net-2 changed: %v %v", other.Annotations, err)
	}
	// Nodes still may not read what the role does not grant.
	if _, err := nodes["net-1"].CoreV1().Secrets("").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("node listed secrets: %v", err)
	}

	// The nodes' cluster DNS reads as kube-proxy: Namespaces (kedge's
	// cluster-dns role), Services and EndpointSlices; not Secrets.
	harness.WaitFor(t, 30*time.Second, "kube-proxy's identity to list and watch what the cluster DNS reads", func() error {
		for what, list := range map[string]func() error{
			"namespaces": func() error { _, err := kubeProxy.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); return err },
			"services":   func() error { _, err := kubeProxy.CoreV1().Services("").List(ctx, metav1.ListOptions{}); return err },
			"endpointslices": func() error {
				_, err := kubeProxy.DiscoveryV1().EndpointSlices("").List(ctx, metav1.ListOptions{})
				return err
			},
			"namespaces watch": func() error {
				w, err := kubeProxy.CoreV1().Namespaces().Watch(ctx, metav1.ListOptions{})
				if err == nil {
					w.Stop()
				}
				return err
			},
		} {
			if err := list(); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
		}
		return nil
	})
	if _, err := kubeProxy.CoreV1().Secrets("").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("kube-proxy's identity listed secrets: %v", err)
	}

	// Drift is repaired: emptied rules and a dropped subject come back.
	role, err := srv.Client.RbacV1().ClusterRoles().Get(ctx, rbac.NodeNetwork, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	role.Rules = nil
	if _, err := srv.Client.RbacV1().ClusterRoles().Update(ctx, role, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding, err := srv.Client.RbacV1().ClusterRoleBindings().Get(ctx, rbac.NodeNetwork, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	binding.Subjects = nil
	if _, err := srv.Client.RbacV1().ClusterRoleBindings().Update(ctx, binding, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, 10*time.Second, "listing Nodes to be forbidden without the role", func() error {
		if _, err := n1.List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			return fmt.Errorf("list err = %v", err)
		}
		return nil
	})
	if err := rbac.Ensure(ctx, srv.Client); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, 10*time.Second, "listing Nodes to be allowed again", func() error {
		_, err := n1.List(ctx, metav1.ListOptions{})
		return err
	})
}

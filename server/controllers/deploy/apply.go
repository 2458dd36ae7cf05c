package deploy

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
)

// FieldManager is the server-side apply field manager of every object the
// deployer applies. Every server uses the same one, so that a field removed
// from a file is removed from the object whichever server applies it.
const FieldManager = "kedge-deploy"

// applier applies and deletes objects of any kind. It is used by one
// goroutine.
type applier struct {
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

func newApplier(disc discovery.DiscoveryInterface, dyn dynamic.Interface) *applier {
	return &applier{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))}
}

// mapping maps gk (at version, if not empty) to its resource. On a miss it
// resets the discovery cache and asks once more, so that a kind whose CRD
// was applied a moment ago is found.
func (a *applier) mapping(gk schema.GroupKind, version string) (*meta.RESTMapping, error) {
	var versions []string
	if version != "" {
		versions = []string{version}
	}
	m, err := a.mapper.RESTMapping(gk, versions...)
	if meta.IsNoMatchError(err) {
		a.mapper.Reset()
		m, err = a.mapper.RESTMapping(gk, versions...)
	}
	return m, err
}

// order puts Namespaces and CustomResourceDefinitions first, so that the
// objects in them can be applied in the same pass; otherwise file order.
func order(objs []*unstructured.Unstructured) {
	first := func(o *unstructured.Unstructured) bool {
		return o.GetKind() == "Namespace" || o.GetKind() == "CustomResourceDefinition"
	}
	sort.SliceStable(objs, func(i, j int) bool { return first(objs[i]) && !first(objs[j]) })
}

// apply server-side applies obj with force. A namespaced object without a
// namespace goes to "default"; a cluster-scoped one loses its namespace. The
// returned Ref has the namespace the object went to (as written, if the kind
// could not be mapped).
func (a *applier) apply(ctx context.Context, obj *unstructured.Unstructured) (Ref, error) {
	gvk := obj.GroupVersionKind()
	m, err := a.mapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return RefOf(obj), fmt.Errorf("%s: %w", RefOf(obj), err)
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		if obj.GetNamespace() == "" {
			obj.SetNamespace(metav1.NamespaceDefault)
		}
	} else {
		obj.SetNamespace("")
	}
	ref := RefOf(obj)
	_, err = a.dyn.Resource(m.Resource).Namespace(obj.GetNamespace()).
		Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	if err != nil {
		return ref, fmt.Errorf("apply %s: %w", ref, err)
	}
	return ref, nil
}

// applyAll applies objs in order and returns the references of all of them
// (applied or not) and the errors. An object whose kind is unknown while a
// CustomResourceDefinition of the same objs was applied is tried again
// once the CRD's kind is served (for up to crdWait), so that a file with a
// CRD and its custom resources applies in one pass.
func (a *applier) applyAll(ctx context.Context, objs []*unstructured.Unstructured) ([]Ref, error) {
	refs := make([]Ref, len(objs))
	errs := make([]error, len(objs))
	crds := false
	var missing []int
	for i, obj := range objs {
		refs[i], errs[i] = a.apply(ctx, obj)
		if errs[i] == nil && obj.GetKind() == "CustomResourceDefinition" {
			crds = true
		}
		if meta.IsNoMatchError(errs[i]) {
			missing = append(missing, i)
		}
	}
	if crds && len(missing) > 0 {
		deadline := time.Now().Add(crdWait)
		for _, i := range missing {
			for meta.IsNoMatchError(errs[i]) && time.Now().Before(deadline) && ctx.Err() == nil {
				select {
				case <-ctx.Done():
				case <-time.After(250 * time.Millisecond):
				}
				refs[i], errs[i] = a.apply(ctx, objs[i])
			}
		}
	}
	return refs, errors.Join(errs...)
}

// crdWait bounds how long applyAll waits for new CRDs' kinds to be served.
const crdWait = 10 * time.Second

// remove deletes the object ref names (in the background: its dependents
// are garbage collected). An object, or a kind, that is gone already is not
// an error.
func (a *applier) remove(ctx context.Context, ref Ref) error {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return fmt.Errorf("delete %s: %w", ref, err)
	}
	m, err := a.mapping(gv.WithKind(ref.Kind).GroupKind(), "")
	if meta.IsNoMatchError(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete %s: %w", ref, err)
	}
	ns := ref.Namespace
	if m.Scope.Name() != meta.RESTScopeNameNamespace {
		ns = ""
	}
	policy := metav1.DeletePropagationBackground
	err = a.dyn.Resource(m.Resource).Namespace(ns).Delete(ctx, ref.Name, metav1.DeleteOptions{PropagationPolicy: &policy})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete %s: %w", ref, err)
	}
	return nil
}

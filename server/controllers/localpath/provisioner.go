// Package localpath provisions PersistentVolumes on the nodes' local disks
// for claims of the StorageClasses whose provisioner is ProvisionerName (the
// packaged default class local-path, manifests/local-storage.yaml).
//
// The work is split by who owns what: the server's Provisioner creates the
// PersistentVolume (a `local` volume under the node's storage directory,
// with node affinity to that node) once the scheduler has picked the node
// of the claim's first pod; the upstream PV controller binds it; the node's
// agent (agent/node/localstorage) creates the directory and, when the volume is
// released under reclaim policy Delete, removes the directory and the
// volume. Nodes publish their storage directory in localvolume.StoragePathAnnotation;
// the names and the volume both sides read are in shared/localvolume.
//
// This is a small controller of our own rather than
// sig-storage-lib-external-provisioner: that library deletes volumes where
// the provisioner runs (here the server, which does not own the nodes'
// disks) and brings its own informers, leader election and finalizers; the
// part kedge needs, creating a pre-bound volume, is a few API calls.
package localpath

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/kedge/kedge/embedded/component"
	"github.com/kedge/kedge/shared/localvolume"
)

// Provisioner creates the PersistentVolumes of pending claims of a class
// whose provisioner is ProvisionerName, once the scheduler selected their node
// (SelectedNodeAnnotation), under the storage directory that node
// publishes. It only creates volumes: the PV controller binds them, and
// the node's agent makes and removes their directories. The server runs
// it with the other controllers (one elected server runs it).
type Provisioner struct {
	// Client reads claims, classes and nodes, creates volumes and records
	// events.
	Client kubernetes.Interface
	Log    *slog.Logger
}

var _ component.Component = (*Provisioner)(nil)

// Name implements component.Component.
func (p *Provisioner) Name() string { return "local-path-provisioner" }

// Run implements component.Component. It is ready once its claim cache is
// synced and returns when ctx is cancelled. A claim that cannot be
// provisioned yet (its node has not published a storage directory, the API
// failed) is retried with backoff up to a minute.
func (p *Provisioner) Run(ctx context.Context, ready func()) error {
	factory := informers.NewSharedInformerFactory(p.Client, 0)
	defer factory.Shutdown()
	claims := factory.Core().V1().PersistentVolumeClaims()
	queue := workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](500*time.Millisecond, time.Minute),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: p.Name()})
	defer queue.ShutDown()
	enqueue := func(obj any) {
		if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
			queue.Add(key)
		}
	}
	if _, err := claims.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue, UpdateFunc: func(_, n any) { enqueue(n) },
	}); err != nil {
		return fmt.Errorf("watch claims: %w", err)
	}
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	defer broadcaster.Shutdown()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: p.Client.CoreV1().Events("")})
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: p.Name()})

	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), claims.Informer().HasSynced) {
		return nil // cancelled before the cache synced
	}
	ready()
	go func() {
		<-ctx.Done()
		queue.ShutDown()
	}()
	for {
		key, quit := queue.Get()
		if quit {
			return nil
		}
		ns, name, _ := cache.SplitMetaNamespaceKey(key)
		claim, err := claims.Lister().PersistentVolumeClaims(ns).Get(name)
		if err == nil {
			err = p.sync(ctx, claim, recorder)
		} else if apierrors.IsNotFound(err) {
			err = nil
		}
		if err != nil && ctx.Err() == nil {
			p.Log.Debug("cannot provision the claim yet", "claim", key, "error", err)
			queue.AddRateLimited(key)
		} else {
			queue.Forget(key)
		}
		queue.Done(key)
	}
}

// sync provisions claim if it is one of ours, waiting for a volume. An
// error means try again later.
func (p *Provisioner) sync(ctx context.Context, claim *corev1.PersistentVolumeClaim, events record.EventRecorder) error {
	node := claim.Annotations[localvolume.SelectedNodeAnnotation]
	if claim.Spec.VolumeName != "" || claim.Status.Phase != corev1.ClaimPending || node == "" ||
		claim.Spec.StorageClassName == nil || *claim.Spec.StorageClassName == "" || claim.DeletionTimestamp != nil {
		return nil
	}
	class, err := p.Client.StorageV1().StorageClasses().Get(ctx, *claim.Spec.StorageClassName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if class.Provisioner != localvolume.ProvisionerName {
		return nil
	}
	name := localvolume.VolumeName(claim)
	if _, err := p.Client.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{}); err == nil {
		return nil // made before; the PV controller binds it
	} else if !apierrors.IsNotFound(err) {
		return err
	}
	n, err := p.Client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("node %s: %w", node, err)
	}
	dir := n.Annotations[localvolume.StoragePathAnnotation]
	if dir == "" {
		msg := fmt.Sprintf("node %s does not publish its local storage directory (annotation %s) yet; is it a kedge node?", node, localvolume.StoragePathAnnotation)
		events.Event(claim, corev1.EventTypeWarning, "ProvisioningFailed", msg)
		return fmt.Errorf("%s", msg)
	}
	pv, err := localvolume.Volume(claim, class, node, dir)
	if err != nil {
		// Not retried: the claim or the node must change first, which
		// brings the claim back.
		events.Event(claim, corev1.EventTypeWarning, "ProvisioningFailed", err.Error())
		return nil
	}
	if _, err := p.Client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create volume %s: %w", name, err)
	}
	events.Eventf(claim, corev1.EventTypeNormal, "ProvisioningSucceeded", "provisioned volume %s at %s on node %s", name, pv.Spec.Local.Path, node)
	p.Log.Info("provisioned a local volume", "claim", claim.Namespace+"/"+claim.Name, "volume", name, "node", node,
		"path", pv.Spec.Local.Path, "size", pv.Spec.Capacity.Storage().String())
	return nil
}

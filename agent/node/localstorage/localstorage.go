// Package localstorage keeps the node's side of kedge's local-path volumes
// (shared/localvolume; the server's side is server/controllers/localpath):
// it creates the directory of every volume provisioned on this node, and when such a volume is released under
// reclaim policy Delete it removes the directory and then the volume. The
// node owns its disk, so this runs in the node's agent; while the node is
// cut off from the servers, removal waits.
package localstorage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/kedge/kedge/embedded/component"
	"github.com/kedge/kedge/shared/localvolume"
)

// Keeper makes and removes the directories of the node's local-path
// volumes under Dir.
type Keeper struct {
	// Client has the node's own credentials; it may list, watch and delete
	// PersistentVolumes (ClusterRole kedge:local-storage).
	Client kubernetes.Interface
	Node   string
	// Dir is the node's storage directory (absolute, clean), published on
	// the Node in localvolume.StoragePathAnnotation by the agent.
	Dir string
	Log *slog.Logger
}

var _ component.Component = (*Keeper)(nil)

// Name implements component.Component.
func (k *Keeper) Name() string { return "local-storage" }

// Run creates Dir (an error if it cannot), is then ready at once (it must
// not hold up an agent that starts offline) and watches the node's
// volumes until ctx ends. Failed work is retried with backoff up to a
// minute.
func (k *Keeper) Run(ctx context.Context, ready func()) error {
	if err := os.MkdirAll(k.Dir, 0o755); err != nil {
		return fmt.Errorf("--local-storage-path: %w", err)
	}
	ready()
	factory := informers.NewSharedInformerFactoryWithOptions(k.Client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.LabelSelector = labels.SelectorFromSet(labels.Set{localvolume.NodeLabel: k.Node}).String()
		}))
	defer factory.Shutdown()
	volumes := factory.Core().V1().PersistentVolumes()
	queue := workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](500*time.Millisecond, time.Minute),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: k.Name()})
	defer queue.ShutDown()
	enqueue := func(obj any) {
		if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
			queue.Add(key)
		}
	}
	if _, err := volumes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue, UpdateFunc: func(_, n any) { enqueue(n) },
	}); err != nil {
		return fmt.Errorf("watch volumes: %w", err)
	}
	factory.Start(ctx.Done())
	go func() {
		<-ctx.Done()
		queue.ShutDown()
	}()
	for {
		name, quit := queue.Get()
		if quit {
			return nil
		}
		pv, err := volumes.Lister().Get(name)
		if err == nil {
			err = k.sync(ctx, pv)
		} else if apierrors.IsNotFound(err) {
			err = nil
		}
		if err != nil && ctx.Err() == nil {
			k.Log.Warn("local volume", "volume", name, "error", err)
			queue.AddRateLimited(name)
		} else {
			queue.Forget(name)
		}
		queue.Done(name)
	}
}

// sync makes pv's directory, or removes it and pv once pv is released
// under reclaim policy Delete. Volumes that are not this node's local-path
// volumes in Dir are left alone.
func (k *Keeper) sync(ctx context.Context, pv *corev1.PersistentVolume) error {
	if pv.Labels[localvolume.NodeLabel] != k.Node {
		return nil
	}
	dir, err := localvolume.Dir(k.Dir, pv)
	if err != nil {
		k.Log.Debug("not a local-path volume of this node's storage directory; left alone", "volume", pv.Name, "reason", err)
		return nil
	}
	switch {
	case pv.Status.Phase == corev1.VolumeReleased && pv.Spec.PersistentVolumeReclaimPolicy == corev1.PersistentVolumeReclaimDelete:
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("remove %s: %w", dir, err)
		}
		uid := pv.UID
		err := k.Client.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete volume %s: %w", pv.Name, err)
		}
		k.Log.Info("removed a released local volume", "volume", pv.Name, "path", dir)
	case pv.Status.Phase == corev1.VolumeReleased || pv.DeletionTimestamp != nil:
		// Retained, or going away: the directory stays as it is.
	default:
		if _, err := os.Lstat(dir); err == nil {
			return nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		// The storage directory may have been removed since start.
		if err := os.MkdirAll(k.Dir, 0o755); err != nil {
			return fmt.Errorf("--local-storage-path: %w", err)
		}
		// Open to every user, like a fresh disk: the pod's user owns
		// what it writes (the kubelet applies fsGroup to local volumes).
		if err := os.Mkdir(dir, 0o777); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("create %s: %w", dir, err)
		}
		if err := os.Chmod(dir, 0o777); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
		k.Log.Info("created a local volume's directory", "volume", pv.Name, "path", dir)
	}
	return nil
}

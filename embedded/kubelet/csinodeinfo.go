package kubelet

import (
	"context"
	"log/slog"
	"reflect"
	"time"
	_ "unsafe" // go:linkname

	"k8s.io/apimachinery/pkg/types"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/kubernetes/pkg/volume"
	_ "k8s.io/kubernetes/pkg/volume/csi" // defines the global linked below
	"k8s.io/kubernetes/pkg/volume/csi/nodeinfomanager"
)

// csiNodeInfo is the CSI volume plugin's node-info manager, a package
// global of k8s.io/kubernetes/pkg/volume/csi that every initialisation of
// the plugin replaces. Only the kubelet uses it (to create the node's
// CSINode and to record the CSI drivers that register on the node), but the
// kube-controller-manager initialises the plugin too, with hosts that have
// no node name. In kedge's server both run in one process, so when the
// controller-manager's initialisation comes last (a race at every start,
// and always when a server becomes leader after its kubelet started), the
// kubelet cannot create its CSINode ("resource name may not be empty"), its
// node never turns Ready and it exits the process after 140 s; nor can a
// CSI driver register. k3s and MicroShift patch upstream for this; kedge
// embeds upstream unmodified, so it puts a manager for the node back.
//
//go:linkname csiNodeInfo k8s.io/kubernetes/pkg/volume/csi.nim
var csiNodeInfo nodeinfomanager.Interface

// keepCSINodeInfo checks every interval, until ctx ends, that the CSI
// plugin's node-info manager is for node, and when another initialisation
// replaced it with one for no node, puts in a manager for node that talks
// to the API server with client (the kubelet's credentials) and
// initialises it as the kubelet does its own: the same as the kubelet's,
// which uses nothing of its host but the client. The store is
// pointer-sized: the kubelet's readers see one manager or the other.
func keepCSINodeInfo(ctx context.Context, node string, client clientset.Interface, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		cur := csiNodeInfo
		if name, ok := nodeNameOf(cur); !ok && cur != nil {
			log.Warn("cannot read the CSI plugin's node name; not guarding it", "type", reflect.TypeOf(cur).String())
			return
		} else if ok && name == "" {
			m := nodeinfomanager.NewNodeInfoManager(types.NodeName(node), nodeHost{client: client}, migratedPluginsOf(cur))
			// What the kubelet does with its own at start: learn the Node's
			// UID (owner of the CSINode it may have to make again) and make
			// sure the CSINode exists and is the node's. A failure (the API
			// out of reach) leaves the rest of the manager working.
			if err := m.InitializeCSINodeWithAnnotation(); err != nil {
				log.Warn("the node's CSINode could not be checked", "err", err)
			}
			csiNodeInfo = m
			log.Debug("the controller-manager replaced the kubelet's CSI node info; put one for the node back")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// nodeHost is the part of a volume host a node-info manager uses: the API
// client. Any other method would panic on the nil interface (the test
// exercises the manager's paths that the kubelet calls).
type nodeHost struct {
	volume.VolumeHost
	client clientset.Interface
}

func (h nodeHost) GetKubeClient() clientset.Interface { return h.client }

// nodeNameOf is the node name a node-info manager was made for, read from
// upstream's unexported field; ok is false when m is nil or not upstream's
// type with that field.
func nodeNameOf(m nodeinfomanager.Interface) (name string, ok bool) {
	f, ok := field(m, "nodeName", reflect.String)
	if !ok {
		return "", false
	}
	return f.String(), true
}

// migratedPluginsOf is the in-tree plugins a node-info manager lists as
// migrated to CSI. Upstream's plugin marks every one it lists as migrated
// (each function returns true); the functions cannot be called from here,
// so the names are read and each is marked true. Nil if m has none.
func migratedPluginsOf(m nodeinfomanager.Interface) map[string]func() bool {
	f, ok := field(m, "migratedPlugins", reflect.Map)
	if !ok || f.Type().Key().Kind() != reflect.String {
		return nil
	}
	out := map[string]func() bool{}
	for _, k := range f.MapKeys() {
		out[k.String()] = func() bool { return true }
	}
	return out
}

// field is the named field of the struct m points to, if it has that kind.
func field(m nodeinfomanager.Interface, name string, kind reflect.Kind) (reflect.Value, bool) {
	if m == nil {
		return reflect.Value{}, false
	}
	v := reflect.ValueOf(m)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return reflect.Value{}, false
	}
	f := v.Elem().FieldByName(name)
	return f, f.IsValid() && f.Kind() == kind
}

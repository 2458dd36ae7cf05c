package kubelet

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	csispec "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	fakeclient "k8s.io/client-go/kubernetes/fake"
	"k8s.io/kubernetes/pkg/volume/csi"
	volumetesting "k8s.io/kubernetes/pkg/volume/testing"

	"github.com/kedge/kedge/scripts/testenv"
)

// nodeInfo is a CSI driver's node service that answers NodeGetInfo.
type nodeInfo struct {
	csispec.UnimplementedNodeServer
	id string
}

func (n nodeInfo) NodeGetInfo(context.Context, *csispec.NodeGetInfoRequest) (*csispec.NodeGetInfoResponse, error) {
	return &csispec.NodeGetInfoResponse{NodeId: n.id}, nil
}

// TestCSIDriverRegistersAfterTheControllerManagerStarts: in kedge's one
// process the kube-controller-manager initialises the CSI volume plugin too,
// with a host that has no node name, possibly after the kubelet did (the
// order is a race at every start, and a server that becomes leader later
// starts its controller-manager long after its kubelet). The kubelet must
// keep its node: a CSI driver registering afterwards is recorded on the
// node's CSINode. Upstream's plugin keeps the node in a package global that
// every initialisation replaces; keepCSINodeInfo puts one for the node back
// (without it this registration fails: "resource name may not be empty").
func TestCSIDriverRegistersAfterTheControllerManagerStarts(t *testing.T) {
	client := fakeclient.NewSimpleClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node1", UID: "node1-uid"}})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { keepCSINodeInfo(ctx, "node1", client, 10*time.Millisecond, slog.Default()); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	// The kubelet's plugin: creating its host waits for the node's CSINode.
	volumetesting.NewFakeKubeletVolumeHostWithCSINodeName(t, t.TempDir(), client, csi.ProbeVolumePlugins(), "node1", nil, nil)
	// Then the attach-detach controller's, as the controller-manager makes it.
	volumetesting.NewFakeAttachDetachVolumeHostWithCSINodeName(t, t.TempDir(), client, csi.ProbeVolumePlugins(), "", nil, nil)
	if name, ok := nodeNameOf(csiNodeInfo); !ok || name != "" {
		t.Fatalf("after the controller-manager's plugin: node name %q (%v), want it replaced by an empty one (upstream changed?)", name, ok)
	}
	testenv.WaitUntil(t, 10*time.Second, "CSI node info for the node put back", func() bool {
		name, _ := nodeNameOf(csiNodeInfo)
		return name == "node1"
	})

	// The CSINode goes away (say, deleted by hand); the registration below
	// makes it again, owned by the Node, which needs the Node's UID.
	if err := client.StorageV1().CSINodes().Delete(t.Context(), "node1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	sock := filepath.Join(t.TempDir(), "csi.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	csispec.RegisterNodeServer(srv, nodeInfo{id: "node1-id"})
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)

	timeout := 10 * time.Second
	if err := csi.PluginHandler.RegisterPlugin(t.Context(), "test.csi.kedge.io", sock, []string{"1.0.0"}, &timeout); err != nil {
		t.Fatalf("registering a CSI driver with the kubelet: %v", err)
	}
	t.Cleanup(func() { csi.PluginHandler.DeRegisterPlugin(context.Background(), "test.csi.kedge.io", sock) })
	cn, err := client.StorageV1().CSINodes().Get(t.Context(), "node1", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the node's CSINode: %v", err)
	}
	if len(cn.OwnerReferences) != 1 || cn.OwnerReferences[0].UID != "node1-uid" {
		t.Errorf("CSINode node1 owners %+v, want the Node (UID node1-uid)", cn.OwnerReferences)
	}
	if len(cn.Spec.Drivers) != 1 || cn.Spec.Drivers[0].Name != "test.csi.kedge.io" || cn.Spec.Drivers[0].NodeID != "node1-id" {
		t.Fatalf("CSINode node1 drivers %+v, want test.csi.kedge.io with node ID node1-id", cn.Spec.Drivers)
	}
}

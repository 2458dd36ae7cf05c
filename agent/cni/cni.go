// Package cni writes the node's CNI network configuration once the
// controller-manager has given the node its pod CIDR.
package cni

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kedge/kedge/embedded/component"
	"github.com/kedge/kedge/server/atomicfile"
)

// ConfFile is the conflist kedge writes in the CNI configuration directory.
const ConfFile = "10-kedge.conflist"

// Bridge is the Linux bridge pods attach to.
const Bridge = "kedge0"

// Conflist returns a bridge + host-local + portmap network for podCIDR.
func Conflist(podCIDR string) ([]byte, error) {
	defaultRoute := "0.0.0.0/0"
	if strings.Contains(podCIDR, ":") {
		defaultRoute = "::/0"
	}
	cfg := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "kedge",
		"plugins": []any{
			map[string]any{
				"type": "bridge", "bridge": Bridge, "isGateway": true, "ipMasq": true, "hairpinMode": true,
				"ipam": map[string]any{
					"type":   "host-local",
					"ranges": [][]map[string]string{{{"subnet": podCIDR}}},
					"routes": []map[string]string{{"dst": defaultRoute}},
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	return json.MarshalIndent(cfg, "", "  ")
}

// Writer waits for the node's pod CIDR and writes the conflist.
type Writer struct {
	Client  kubernetes.Interface
	Node    string
	ConfDir string
	Log     *slog.Logger
}

var _ component.Component = (*Writer)(nil)

// Name implements component.Component.
func (w *Writer) Name() string { return "cni-config" }

// Run is ready once the conflist for the node's pod CIDR is written. An
// existing conflist makes it ready at once (offline start); it is rewritten
// if the pod CIDR differs.
func (w *Writer) Run(ctx context.Context, ready func()) error {
	path := filepath.Join(w.ConfDir, ConfFile)
	if err := os.MkdirAll(w.ConfDir, 0o755); err != nil {
		return err
	}
	if _, err := os.Stat(path); err == nil {
		ready()
	}
	written := ""
	for {
		node, err := w.Client.CoreV1().Nodes().Get(ctx, w.Node, metav1.GetOptions{})
		if err == nil && node.Spec.PodCIDR != "" && node.Spec.PodCIDR != written {
			data, err := Conflist(node.Spec.PodCIDR)
			if err != nil {
				return err
			}
			if err := atomicfile.Write(path, data, 0o644); err != nil {
				return fmt.Errorf("write CNI config: %w", err)
			}
			written = node.Spec.PodCIDR
			w.Log.Info("wrote CNI config", "podCIDR", written)
			ready()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Second):
		}
	}
}

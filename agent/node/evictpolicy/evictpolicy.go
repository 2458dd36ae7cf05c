// Package evictpolicy records on the agent's own Node whether its pods may
// be evicted while the node is unreachable (the annotation
// tainteviction.EvictWhenUnreachable), as chosen with
// --evict-when-unreachable.
package evictpolicy

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/kedge/kedge/embedded/component"
	"github.com/kedge/kedge/embedded/tainteviction"
)

// Annotator sets the annotation once the Node exists.
type Annotator struct {
	// Client has the node's own credentials (NodeRestriction lets a node
	// patch only its own Node).
	Client kubernetes.Interface
	Node   string
	Evict  bool
	Log    *slog.Logger
}

var _ component.Component = (*Annotator)(nil)

// Name implements component.Component.
func (a *Annotator) Name() string { return "evict-policy" }

// Run is ready at once (it must not hold up an agent that starts offline)
// and patches the Node, retrying every 2 s until it succeeds or ctx ends.
func (a *Annotator) Run(ctx context.Context, ready func()) error {
	ready()
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"annotations": map[string]string{tainteviction.EvictWhenUnreachable: strconv.FormatBool(a.Evict)},
	}})
	if err != nil {
		return err
	}
	for {
		_, err := a.Client.CoreV1().Nodes().Patch(ctx, a.Node, types.MergePatchType, patch, metav1.PatchOptions{})
		if err == nil {
			a.Log.Info("set eviction policy for an unreachable node", tainteviction.EvictWhenUnreachable, a.Evict)
			<-ctx.Done()
			return nil
		}
		a.Log.Debug("cannot set the eviction policy yet", "error", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Second):
		}
	}
}

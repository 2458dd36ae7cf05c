// Package kubelet runs the upstream kubelet in-process.
package kubelet

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	utilfeature "k8s.io/apiserver/pkg/util/feature"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	nodeutil "k8s.io/component-helpers/node/util"
	"k8s.io/kubernetes/cmd/kubelet/app"
	"k8s.io/kubernetes/cmd/kubelet/app/options"
	"k8s.io/kubernetes/pkg/kubelet/eviction"
	"k8s.io/kubernetes/pkg/kubelet/kubeletconfig/configfiles"
	utilfs "k8s.io/kubernetes/pkg/util/filesystem"

	"github.com/kedge/kedge/embedded/component"
	"github.com/kedge/kedge/embedded/kubeflags"
	cliflag "k8s.io/component-base/cli/flag"
)

// Kubelet is the kubelet with a KubeletConfiguration file and the flags that
// only exist as flags (node IP, hostname override, labels, kubeconfig).
type Kubelet struct {
	ConfigFile string
	Args       []string
	// HealthzURL is polled for readiness (the config's healthz address).
	HealthzURL string
}

var _ component.Component = (*Kubelet)(nil)

// Name implements component.Component.
func (k *Kubelet) Name() string { return "kubelet" }

// Run starts the kubelet and is ready when its healthz answers. The
// upstream kubelet never stops its servers and loops, so it runs detached:
// Run returns on cancel and the kubelet ends with the process. Containers
// keep running either way.
func (k *Kubelet) Run(ctx context.Context, ready func()) error {
	loader, err := configfiles.NewFsLoader(&utilfs.DefaultFs{}, k.ConfigFile)
	if err != nil {
		return fmt.Errorf("kubelet config: %w", err)
	}
	kc, err := loader.Load(ctx)
	if err != nil {
		return fmt.Errorf("kubelet config: %w", err)
	}
	if kc.EvictionHard == nil {
		kc.EvictionHard = eviction.DefaultEvictionHard
	}
	// Flags are parsed after the file is loaded, so a flag for a config
	// field (--max-pods, say) overrides the file, as upstream does.
	f := options.NewKubeletFlags()
	sets := cliflag.NamedFlagSets{}
	f.AddFlags(sets.FlagSet("kubelet"))
	options.AddKubeletConfigFlags(sets.FlagSet("config"), kc)
	if err := kubeflags.Parse("kubelet", sets, k.Args); err != nil {
		return err
	}
	if err := utilfeature.DefaultMutableFeatureGate.SetFromMap(kc.FeatureGates); err != nil {
		return fmt.Errorf("kubelet feature gates: %w", err)
	}
	s := &options.KubeletServer{KubeletFlags: *f, KubeletConfiguration: *kc}
	runCtx := context.WithoutCancel(ctx)
	deps, err := app.UnsecuredDependencies(runCtx, s, utilfeature.DefaultFeatureGate)
	if err != nil {
		return fmt.Errorf("kubelet dependencies: %w", err)
	}
	if err := k.guardCSINodeInfo(ctx, f); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- app.Run(runCtx, s, deps, utilfeature.DefaultFeatureGate) }()
	go component.PollReady(ctx, 250*time.Millisecond, component.HTTPCheck(k.HealthzURL), ready)
	select {
	case err := <-done:
		if err == nil {
			err = fmt.Errorf("kubelet stopped")
		}
		return err
	case <-ctx.Done():
		return nil
	}
}

// guardCSINodeInfo keeps the CSI plugin's node-info manager the node's
// while the kubelet runs (see csiNodeInfo), checking every second, with a
// client of the kubelet's own kubeconfig.
func (k *Kubelet) guardCSINodeInfo(ctx context.Context, f *options.KubeletFlags) error {
	node, err := nodeutil.GetHostname(f.HostnameOverride)
	if err != nil {
		return fmt.Errorf("kubelet node name: %w", err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", f.KubeConfig)
	if err != nil {
		return fmt.Errorf("kubelet kubeconfig: %w", err)
	}
	client, err := clientset.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kubelet kubeconfig: %w", err)
	}
	go keepCSINodeInfo(ctx, node, client, time.Second, slog.Default().With("component", "kubelet"))
	return nil
}

// Package nodeaddresses checks on a real server how a node's addresses are
// set: a node registers the way a kubelet with --cloud-provider=external
// does (its --node-ip as InternalIP, the uninitialized taint), the agent's
// Publisher annotates the Node with the node's own credentials, and the
// server's cloud node controller (kedge cloud provider) sets the
// addresses and removes the taint. One in-process server per test binary:
// the scheduler registers process-wide state.
package nodeaddresses

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	cloudproviderapi "k8s.io/cloud-provider/api"

	"github.com/kedge/kedge/agent/join"
	"github.com/kedge/kedge/agent/node/nodeaddresses"
	"github.com/kedge/kedge/scripts/testenv"
	"github.com/kedge/kedge/server/integration/harness"
)

func TestCloudNodeControllerSetsAddresses(t *testing.T) {
	ctx := t.Context()
	srv := harness.StartJoinable(t, harness.NewConfig(t, t.TempDir()))
	cases := []struct {
		name     string
		ip       string
		external []string
		want     []corev1.NodeAddress
	}{
		{"plain", "192.0.2.41", nil, []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: "192.0.2.41"}, {Type: corev1.NodeHostName, Address: "plain"}}},
		{"public", "192.0.2.42", []string{"203.0.113.7", "2001:db8::7"}, []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: "192.0.2.42"},
			{Type: corev1.NodeExternalIP, Address: "203.0.113.7"}, {Type: corev1.NodeExternalIP, Address: "2001:db8::7"},
			{Type: corev1.NodeHostName, Address: "public"}}},
	}
	publishers := map[string]*nodeaddresses.Publisher{}
	stops := map[string]func(){}
	for _, tc := range cases {
		certs := srv.Join(t, join.Node{Name: tc.name, Password: "pw-of-" + tc.name, Addresses: []string{tc.ip}})
		client := srv.ClientAs(certs.KubeletClientCert, certs.KubeletClientKey)
		registered := time.Now()
		register(t, client, tc.name, tc.ip)
		p := &nodeaddresses.Publisher{Client: client, Node: tc.name, InternalIP: net.ParseIP(tc.ip), Log: slog.New(slog.DiscardHandler)}
		for _, e := range tc.external {
			p.ExternalIPs = append(p.ExternalIPs, net.ParseIP(e))
		}
		publishers[tc.name] = p
		_, stops[tc.name] = run(t, p)
		ready, _ := run(t, initialized(p))
		waitReady(t, tc.name+" initialized", ready, 30*time.Second)
		t.Logf("%s: registered to initialized with its addresses in %s", tc.name, time.Since(registered).Round(time.Millisecond))
	}
	for _, tc := range cases {
		waitAddresses(t, srv.Client, tc.name, tc.want)
	}

	// A node deleted and registered again (tainted, without the
	// annotations) is initialized again: the Publisher watches its Node.
	if err := srv.Client.CoreV1().Nodes().Delete(ctx, "public", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	register(t, publishers["public"].Client, "public", "192.0.2.42")
	waitAddresses(t, srv.Client, "public", cases[1].want)

	// The agent restarts with a new --node-ip and an external IP: the
	// kubelet updates its provided-node-ip annotation (through status, as
	// it does), the new Publisher its annotations, and the controller the
	// addresses of the initialized Node within its resync period.
	stops["plain"]()
	client := publishers["plain"].Client
	patch := []byte(`{"metadata":{"annotations":{"` + cloudproviderapi.AnnotationAlphaProvidedIPAddr + `":"192.0.2.51"}}}`)
	if _, err := client.CoreV1().Nodes().Patch(ctx, "plain", types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		t.Fatal(err)
	}
	p := &nodeaddresses.Publisher{Client: client, Node: "plain", InternalIP: net.ParseIP("192.0.2.51"),
		ExternalIPs: []net.IP{net.ParseIP("198.51.100.9")}, Log: slog.New(slog.DiscardHandler)}
	run(t, p)
	ready, _ := run(t, initialized(p))
	waitReady(t, "plain with its new addresses", ready, 20*time.Second)
	waitAddresses(t, srv.Client, "plain", []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.0.2.51"},
		{Type: corev1.NodeExternalIP, Address: "198.51.100.9"}, {Type: corev1.NodeHostName, Address: "plain"}})
}

// initialized is the agent's wait for p's addresses on the Node.
func initialized(p *nodeaddresses.Publisher) *nodeaddresses.Initialized {
	return &nodeaddresses.Initialized{Client: p.Client, Node: p.Node, InternalIP: p.InternalIP, ExternalIPs: p.ExternalIPs,
		Timeout: time.Minute, Log: slog.New(slog.DiscardHandler)}
}

// register creates the Node as a kubelet with --cloud-provider=external
// and --node-ip ip does.
func register(t *testing.T, client kubernetes.Interface, name, ip string) {
	t.Helper()
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{cloudproviderapi.AnnotationAlphaProvidedIPAddr: ip}},
		Spec:       corev1.NodeSpec{Taints: []corev1.Taint{{Key: cloudproviderapi.TaintExternalCloudProvider, Value: "true", Effect: corev1.TaintEffectNoSchedule}}},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: ip}, {Type: corev1.NodeHostName, Address: name}}},
	}
	harness.WaitFor(t, 30*time.Second, name+" to register", func() error {
		_, err := client.CoreV1().Nodes().Create(t.Context(), node, metav1.CreateOptions{})
		return err
	})
}

// run runs c until stop is called or the test ends; ready is closed when
// c is ready.
func run(t *testing.T, c interface {
	Run(context.Context, func()) error
}) (ready <-chan struct{}, stop func()) {
	r := testenv.Start(t, c.Run)
	return r.Ready(), func() {
		if err := r.Stop(); err != nil {
			t.Errorf("stopped with error: %v", err)
		}
	}
}

// waitReady fails the test unless ready is closed within timeout.
func waitReady(t *testing.T, what string, ready <-chan struct{}, timeout time.Duration) {
	t.Helper()
	select {
	case <-ready:
	case <-time.After(timeout):
		t.Fatalf("%s: not ready within %s", what, timeout)
	}
}

func waitAddresses(t *testing.T, client kubernetes.Interface, name string, want []corev1.NodeAddress) {
	t.Helper()
	harness.WaitFor(t, 30*time.Second, name+"'s addresses", func() error {
		n, err := client.CoreV1().Nodes().Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if slices.ContainsFunc(n.Spec.Taints, func(tn corev1.Taint) bool { return tn.Key == cloudproviderapi.TaintExternalCloudProvider }) {
			return fmt.Errorf("still tainted: %v", n.Spec.Taints)
		}
		if !slices.Equal(n.Status.Addresses, want) {
			return fmt.Errorf("addresses %v, want %v", n.Status.Addresses, want)
		}
		if n.Spec.ProviderID != "kedge://"+name {
			return fmt.Errorf("provider ID %q", n.Spec.ProviderID)
		}
		return nil
	})
}

// Package servicelb checks the service load balancer against a real
// apiserver: LoadBalancer Services get the Ready nodes' addresses, a port
// clash is reported with an Event, and a disabled controller gives back the
// ingress it set (server-side apply ownership), leaving other Services alone.
package servicelb

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/kedge/kedge/server/controllers/servicelb"
	"github.com/kedge/kedge/server/integration/harness"
)

func TestServiceLoadBalancer(t *testing.T) {
	c := harness.NewConfig(t, t.TempDir())
	// The server's own controller only releases; this test runs its own.
	c.Disable = []string{"servicelb"}
	srv := harness.StartInProcess(t, c)
	client := srv.Client
	ctx := t.Context()
	// The server's own (disabled) controller has made its release pass.
	select {
	case <-srv.AllReady:
	case <-time.After(2 * time.Minute):
		t.Fatal("the server's components were not all ready within 2 minutes")
	}
	for _, n := range []struct {
		name  string
		ip    string
		ready bool
	}{{"edge-a", "192.0.2.11", true}, {"edge-b", "192.0.2.12", true}, {"edge-down", "192.0.2.13", false}} {
		addNode(t, client, n.name, n.ip, n.ready)
	}
	stop := runController(t, client, false)
	web := createLB(t, client, "web", 80)
	waitIngress(t, client, "web", []string{"192.0.2.11", "192.0.2.12"})

	// A younger Service on the same port gets nothing and an Event.
	createLB(t, client, "clash", 80)
	harness.WaitFor(t, 30*time.Second, "a PortInUse event for clash", func() error {
		evs, err := client.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=clash,reason=PortInUse"})
		if err != nil || len(evs.Items) == 0 {
			return fmt.Errorf("no event yet (%v)", err)
		}
		return nil
	})
	if ips := ingress(t, client, "clash"); len(ips) != 0 {
		t.Fatalf("clash has ingress %v while web holds port 80", ips)
	}
	if err := client.CoreV1().Services("default").Delete(ctx, web.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitIngress(t, client, "clash", []string{"192.0.2.11", "192.0.2.12"})

	// A Service of another load-balancer class is left alone, also on release.
	theirs, err := client.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "theirs"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, LoadBalancerClass: ptr.To("example.com/other-lb"),
			Ports: []corev1.ServicePort{{Port: 81, Protocol: corev1.ProtocolTCP}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	theirs.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "198.51.100.1"}}
	if _, err := client.CoreV1().Services("default").UpdateStatus(ctx, theirs, metav1.UpdateOptions{FieldManager: "other-lb"}); err != nil {
		t.Fatal(err)
	}
	createLB(t, client, "mine", 82)
	waitIngress(t, client, "mine", []string{"192.0.2.11", "192.0.2.12"})

	// A port kedge serves on the nodes is not given to a Service.
	createLB(t, client, "steals-kubelet", 10250)
	harness.WaitFor(t, 30*time.Second, "a PortInUse event for steals-kubelet", func() error {
		evs, err := client.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=steals-kubelet,reason=PortInUse"})
		if err != nil || len(evs.Items) == 0 {
			return fmt.Errorf("no event yet (%v)", err)
		}
		return nil
	})
	if ips := ingress(t, client, "steals-kubelet"); len(ips) != 0 {
		t.Fatalf("a Service on the kubelet's port got ingress %v", ips)
	}

	// Changing the type releases the ingress.
	setType(t, client, "clash", corev1.ServiceTypeNodePort)
	waitIngress(t, client, "clash", nil)
	stop()

	// Disabled: what kedge set is given back.
	runController(t, client, true)
	waitIngress(t, client, "mine", nil)
	if ips := ingress(t, client, "theirs"); !slices.Equal(ips, []string{"198.51.100.1"}) {
		t.Errorf("the other load balancer's Service ingress = %v after release, want it kept", ips)
	}
}

func runController(t *testing.T, client kubernetes.Interface, disabled bool) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	ready := make(chan struct{})
	go func() {
		defer close(done)
		c := &servicelb.Controller{Client: client, Disabled: disabled, Log: slog.New(slog.DiscardHandler),
			Reserved: map[string]string{servicelb.PortKey(corev1.ProtocolTCP, 10250): "the kubelet"}}
		if err := c.Run(ctx, func() { close(ready) }); err != nil {
			t.Errorf("servicelb: %v", err)
		}
	}()
	stop = sync.OnceFunc(func() {
		cancel()
		<-done
	})
	t.Cleanup(stop)
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		t.Fatal("servicelb not ready within 30 s")
	}
	return stop
}

func addNode(t *testing.T, client kubernetes.Interface, name, ip string, ready bool) {
	t.Helper()
	n, err := client.CoreV1().Nodes().Create(t.Context(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	now := metav1.Now()
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st, LastHeartbeatTime: now, LastTransitionTime: now}}
	if _, err := client.CoreV1().Nodes().UpdateStatus(t.Context(), n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func createLB(t *testing.T, client kubernetes.Interface, name string, port int32) *corev1.Service {
	t.Helper()
	s, err := client.CoreV1().Services("default").Create(t.Context(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{{Port: port, Protocol: corev1.ProtocolTCP}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func setType(t *testing.T, client kubernetes.Interface, name string, typ corev1.ServiceType) {
	t.Helper()
	s, err := client.CoreV1().Services("default").Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Spec.Type = typ
	if _, err := client.CoreV1().Services("default").Update(t.Context(), s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func ingress(t *testing.T, client kubernetes.Interface, name string) []string {
	t.Helper()
	s, err := client.CoreV1().Services("default").Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var ips []string
	for _, in := range s.Status.LoadBalancer.Ingress {
		ips = append(ips, in.IP)
	}
	return ips
}

func waitIngress(t *testing.T, client kubernetes.Interface, name string, want []string) {
	t.Helper()
	harness.WaitFor(t, 30*time.Second, name+" ingress "+fmt.Sprintf("%v", want), func() error {
		if got := ingress(t, client, name); !slices.Equal(got, want) {
			return fmt.Errorf("ingress %v", got)
		}
		return nil
	})
}

package lb

import (
	"context"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"
)

// slice is a default/kubernetes EndpointSlice listing addr (host:port).
func slice(name, addr string, ready *bool) *discoveryv1.EndpointSlice {
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: serviceNamespace,
			Labels: map[string]string{discoveryv1.LabelServiceName: serviceName}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{host}, Conditions: discoveryv1.EndpointConditions{Ready: ready}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To(portName), Port: ptr.To(int32(p))}},
	}
}

func TestAddresses(t *testing.T) {
	twoPorts := slice("two", "192.0.2.3:6443", nil)
	twoPorts.Ports = append([]discoveryv1.EndpointPort{{Name: ptr.To("other"), Port: ptr.To(int32(1))}}, twoPorts.Ports...)
	unnamed := slice("unnamed", "192.0.2.4:7443", nil)
	unnamed.Ports[0].Name = nil
	noPort := slice("noport", "192.0.2.5:6443", nil)
	noPort.Ports = nil
	got := Addresses([]*discoveryv1.EndpointSlice{
		slice("a", "192.0.2.2:6443", ptr.To(true)),
		slice("dup", "192.0.2.2:6443", nil),
		slice("down", "192.0.2.9:6443", ptr.To(false)),
		twoPorts, unnamed, noPort,
		slice("v6", "[2001:db8::1]:6443", nil),
	})
	want := []string{"192.0.2.2:6443", "192.0.2.3:6443", "192.0.2.4:7443", "[2001:db8::1]:6443"}
	if !slices.Equal(got, want) {
		t.Fatalf("Addresses = %v, want %v", got, want)
	}
}

// TestLearnsServersFromEndpointSlices: the balancer adds the servers the
// EndpointSlices list, drops those they no longer list (never --server),
// and stores the listed ones, so that after a restart while --server is down it
// uses a learned server. OnServers hears --server alone first, then the
// listed servers (without --server once no slice lists it).
func TestLearnsServersFromEndpointSlices(t *testing.T) {
	a, b, c := newBackend(t, "a"), newBackend(t, "b"), newBackend(t, "c")
	e := newEnv(t, a)
	client := fake.NewClientset(slice("kubernetes", a.addr(), ptr.To(true)), slice("kubernetes-b", b.addr(), ptr.To(true)))
	watching := make(chan struct{})
	var once sync.Once
	client.PrependWatchReactor("endpointslices", func(action k8stesting.Action) (bool, watch.Interface, error) {
		w, err := client.Tracker().Watch(action.GetResource(), action.GetNamespace())
		if err != nil {
			return false, nil, err
		}
		once.Do(func() { close(watching) })
		return true, w, nil
	})
	lb := e.balancer(a.url())
	lb.Client = client
	heard := &serverLists{}
	lb.OnServers = heard.add
	r := e.start(lb)
	e.waitReady(r, 5*time.Second)
	waitFile(t, lb.StateFile, a.addr(), b.addr())
	heard.waitLast(t, a.addr(), b.addr())
	if first := heard.first(); !slices.Equal(first, []string{a.addr()}) {
		t.Errorf("OnServers first heard %v, want --server alone", first)
	}

	select {
	case <-watching:
	case <-time.After(5 * time.Second):
		t.Fatal("the balancer never watched the EndpointSlices")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	eps := client.DiscoveryV1().EndpointSlices(serviceNamespace)
	if err := eps.Delete(ctx, "kubernetes-b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := eps.Create(ctx, slice("kubernetes-c", c.addr(), nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := eps.Update(ctx, slice("kubernetes", "192.0.2.1:6443", ptr.To(false)), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// a (--server) is still used but no longer stored: no slice lists it.
	waitFile(t, lb.StateFile, c.addr())
	heard.waitLast(t, c.addr())

	// The agent restarts while --server is down: the stored list leads
	// it to c.
	if err := r.Stop(); err != nil {
		t.Errorf("Run: %v", err)
	}
	a.kill()
	again := e.balancer(a.url())
	e.waitReady(e.start(again), 2*time.Second)
	e.waitServedBy(again, "c", 3*time.Second)
}

// serverLists records the lists given to OnServers.
type serverLists struct {
	mu    sync.Mutex
	lists [][]string
}

func (s *serverLists) add(l []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lists = append(s.lists, l)
}

func (s *serverLists) first() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.lists) == 0 {
		return nil
	}
	return s.lists[0]
}

// waitLast waits until the last list heard is want.
func (s *serverLists) waitLast(t *testing.T, want ...string) {
	t.Helper()
	slices.Sort(want)
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		var last []string
		if n := len(s.lists); n > 0 {
			last = s.lists[n-1]
		}
		all := slices.Clone(s.lists)
		s.mu.Unlock()
		if slices.Equal(last, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("OnServers heard %v, want last %v", all, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

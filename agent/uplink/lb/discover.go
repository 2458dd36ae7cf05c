package lb

import (
	"context"
	"log/slog"
	"net"
	"slices"
	"strconv"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// The kubernetes Service's EndpointSlices list every server's public API
// address (kept by server/controllers/endpoints).
const (
	serviceNamespace = metav1.NamespaceDefault
	serviceName      = "kubernetes"
	portName         = "https"
)

// discover watches the default/kubernetes EndpointSlices with client and
// calls update with the servers they list (never with none), until ctx
// ends. The informer lists again after a watch breaks, for example when the
// balancer switches servers and closes its connections.
func discover(ctx context.Context, client kubernetes.Interface, update func([]string), log *slog.Logger) {
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithNamespace(serviceNamespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.LabelSelector = discoveryv1.LabelServiceName + "=" + serviceName
		}))
	inf := factory.Discovery().V1().EndpointSlices().Informer()
	var last []string // the handlers run one at a time
	changed := func() {
		var eps []*discoveryv1.EndpointSlice
		for _, o := range inf.GetStore().List() {
			if s, ok := o.(*discoveryv1.EndpointSlice); ok {
				eps = append(eps, s)
			}
		}
		servers := Addresses(eps)
		if len(servers) == 0 || slices.Equal(servers, last) {
			return
		}
		last = servers
		log.Info("the kubernetes EndpointSlices list servers", "servers", servers)
		update(servers)
	}
	inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { changed() },
		UpdateFunc: func(any, any) { changed() },
		DeleteFunc: func(any) { changed() },
	})
	factory.Start(ctx.Done())
	<-ctx.Done()
	factory.Shutdown()
}

// Addresses returns the sorted host:port of every endpoint in slices that
// is not marked not-ready, on the port named "https" (or the slice's only
// port).
func Addresses(eps []*discoveryv1.EndpointSlice) []string {
	var out []string
	for _, s := range eps {
		port := slicePort(s)
		if port == 0 {
			continue
		}
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			for _, a := range ep.Addresses {
				out = append(out, net.JoinHostPort(a, strconv.Itoa(int(port))))
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func slicePort(s *discoveryv1.EndpointSlice) int32 {
	for _, p := range s.Ports {
		if p.Port != nil && p.Name != nil && *p.Name == portName {
			return *p.Port
		}
	}
	if len(s.Ports) == 1 && s.Ports[0].Port != nil {
		return *s.Ports[0].Port
	}
	return 0
}

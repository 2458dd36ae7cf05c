package metricsapi

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
)

// The API group and version served, as metrics-server serves them.
const (
	Group   = "metrics.k8s.io"
	Version = "v1beta1"
	prefix  = "/apis/" + Group + "/" + Version
)

var (
	nodesGVR = schema.GroupVersionResource{Version: "v1", Resource: "nodes"}
	podsGVR  = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
)

// Handler serves metrics.k8s.io/v1beta1 to the apiserver's aggregator:
// discovery, and get and list of nodes and pods (with label and field
// selectors, which select among the Nodes and Pods themselves). Every
// request must authenticate as the aggregator (see authenticate); reads of
// metrics are authorized for the proxied user with a SubjectAccessReview.
// Watches are not supported (405), like metrics-server. Safe for
// concurrent use.
type Handler struct {
	Store *Store
	// Reviews creates SubjectAccessReviews.
	Reviews reviewer
	// Metadata reads the Nodes' and Pods' names and labels.
	Metadata metadata.Interface
	// ClientCAs verifies the front-proxy client certificate (the
	// request-header CA); AllowedNames are its allowed common names.
	ClientCAs    *x509.CertPool
	AllowedNames []string
	Log          *slog.Logger
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, err := authenticate(r, h.ClientCAs, h.AllowedNames)
	if err != nil {
		h.fail(w, err)
		return
	}
	if r.Method != http.MethodGet {
		h.fail(w, apierrors.NewMethodNotSupported(schema.GroupResource{Group: Group}, r.Method))
		return
	}
	path := strings.TrimSuffix(r.URL.Path, "/")
	switch path {
	case "/apis/" + Group:
		writeJSON(w, http.StatusOK, apiGroup())
		return
	case prefix:
		writeJSON(w, http.StatusOK, apiResources())
		return
	}
	rest, ok := strings.CutPrefix(path, prefix+"/")
	if !ok {
		h.fail(w, apierrors.NewNotFound(schema.GroupResource{}, r.URL.Path))
		return
	}
	parts := strings.Split(rest, "/")
	var namespace string
	if len(parts) >= 3 && parts[0] == "namespaces" && parts[2] == "pods" {
		namespace, parts = parts[1], parts[2:]
	}
	if len(parts) > 2 || (parts[0] != "nodes" && parts[0] != "pods") || (parts[0] == "nodes" && namespace != "") {
		h.fail(w, apierrors.NewNotFound(schema.GroupResource{}, r.URL.Path))
		return
	}
	res, name := parts[0], ""
	if len(parts) == 2 {
		name = parts[1]
	}
	verb := "get"
	if name == "" {
		verb = "list"
	}
	if q := r.URL.Query().Get("watch"); q == "true" || q == "1" {
		h.fail(w, apierrors.NewMethodNotSupported(schema.GroupResource{Group: Group, Resource: res}, "watch"))
		return
	}
	ctx := r.Context()
	if err := authorize(ctx, h.Reviews, c, verb, res, namespace, name); err != nil {
		h.fail(w, err)
		return
	}
	sel := metav1.ListOptions{
		LabelSelector: r.URL.Query().Get("labelSelector"),
		FieldSelector: r.URL.Query().Get("fieldSelector"),
	}
	var out any
	if res == "nodes" {
		out, err = h.nodes(ctx, name, sel)
	} else {
		out, err = h.pods(ctx, namespace, name, sel)
	}
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// nodes is the NodeMetrics of node name, or the list of those selected.
func (h *Handler) nodes(ctx context.Context, name string, sel metav1.ListOptions) (any, error) {
	gr := schema.GroupResource{Group: Group, Resource: "nodes"}
	if name != "" {
		n, err := h.Metadata.Resource(nodesGVR).Get(ctx, name, metav1.GetOptions{ResourceVersion: "0"})
		if err != nil {
			return nil, notFoundAs(err, gr, name)
		}
		u, ok := h.Store.Node(name)
		if !ok {
			return nil, apierrors.NewNotFound(gr, name)
		}
		return nodeMetrics(n.Name, n.Labels, u), nil
	}
	sel.ResourceVersion = "0"
	list, err := h.Metadata.Resource(nodesGVR).List(ctx, sel)
	if err != nil {
		return nil, err
	}
	out := &metricsv1beta1.NodeMetricsList{
		TypeMeta: metav1.TypeMeta{Kind: "NodeMetricsList", APIVersion: Group + "/" + Version},
		Items:    []metricsv1beta1.NodeMetrics{},
	}
	for _, n := range list.Items {
		if u, ok := h.Store.Node(n.Name); ok {
			m := nodeMetrics(n.Name, n.Labels, u)
			m.TypeMeta = metav1.TypeMeta{}
			out.Items = append(out.Items, *m)
		}
	}
	return out, nil
}

// pods is the PodMetrics of pod namespace/name, or the list of those
// selected in namespace (all namespaces if empty).
func (h *Handler) pods(ctx context.Context, namespace, name string, sel metav1.ListOptions) (any, error) {
	gr := schema.GroupResource{Group: Group, Resource: "pods"}
	if name != "" {
		p, err := h.Metadata.Resource(podsGVR).Namespace(namespace).Get(ctx, name, metav1.GetOptions{ResourceVersion: "0"})
		if err != nil {
			return nil, notFoundAs(err, gr, name)
		}
		u, ok := h.Store.Pod(namespace, name)
		if !ok {
			return nil, apierrors.NewNotFound(gr, name)
		}
		return podMetrics(u, p.Labels), nil
	}
	sel.ResourceVersion = "0"
	list, err := h.Metadata.Resource(podsGVR).Namespace(namespace).List(ctx, sel)
	if err != nil {
		return nil, err
	}
	type key struct{ ns, name string }
	labels := make(map[key]map[string]string, len(list.Items))
	for _, p := range list.Items {
		labels[key{p.Namespace, p.Name}] = p.Labels
	}
	out := &metricsv1beta1.PodMetricsList{
		TypeMeta: metav1.TypeMeta{Kind: "PodMetricsList", APIVersion: Group + "/" + Version},
		Items:    []metricsv1beta1.PodMetrics{},
	}
	for _, u := range h.Store.Pods(namespace) {
		l, ok := labels[key{u.Namespace, u.Name}]
		if !ok {
			continue // not selected, or deleted since it was scraped
		}
		m := podMetrics(u, l)
		m.TypeMeta = metav1.TypeMeta{}
		out.Items = append(out.Items, *m)
	}
	return out, nil
}

// notFoundAs turns the apiserver's NotFound for a Node or Pod into the
// metrics resource's NotFound; other errors pass as they are.
func notFoundAs(err error, gr schema.GroupResource, name string) error {
	if apierrors.IsNotFound(err) {
		return apierrors.NewNotFound(gr, name)
	}
	return err
}

func usageList(nanoCores int64, memory uint64) corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewScaledQuantity(nanoCores, resource.Nano),
		corev1.ResourceMemory: *resource.NewQuantity(int64(memory), resource.BinarySI),
	}
}

func nodeMetrics(name string, labels map[string]string, u Usage) *metricsv1beta1.NodeMetrics {
	return &metricsv1beta1.NodeMetrics{
		TypeMeta:   metav1.TypeMeta{Kind: "NodeMetrics", APIVersion: Group + "/" + Version},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, CreationTimestamp: metav1.Now()},
		Timestamp:  metav1.NewTime(u.Time),
		Window:     metav1.Duration{Duration: u.Window.Round(time.Millisecond)},
		Usage:      usageList(u.NanoCores, u.Memory),
	}
}

func podMetrics(u PodUsage, labels map[string]string) *metricsv1beta1.PodMetrics {
	m := &metricsv1beta1.PodMetrics{
		TypeMeta:   metav1.TypeMeta{Kind: "PodMetrics", APIVersion: Group + "/" + Version},
		ObjectMeta: metav1.ObjectMeta{Name: u.Name, Namespace: u.Namespace, Labels: labels, CreationTimestamp: metav1.Now()},
		Timestamp:  metav1.NewTime(u.Time),
		Window:     metav1.Duration{Duration: u.Window.Round(time.Millisecond)},
		Containers: make([]metricsv1beta1.ContainerMetrics, 0, len(u.Containers)),
	}
	for _, c := range u.Containers {
		m.Containers = append(m.Containers, metricsv1beta1.ContainerMetrics{Name: c.Name, Usage: usageList(c.NanoCores, c.Memory)})
	}
	return m
}

func apiGroup() *metav1.APIGroup {
	gv := metav1.GroupVersionForDiscovery{GroupVersion: Group + "/" + Version, Version: Version}
	return &metav1.APIGroup{
		TypeMeta: metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"},
		Name:     Group, Versions: []metav1.GroupVersionForDiscovery{gv}, PreferredVersion: gv,
	}
}

func apiResources() *metav1.APIResourceList {
	verbs := metav1.Verbs{"get", "list"}
	return &metav1.APIResourceList{
		TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
		GroupVersion: Group + "/" + Version,
		APIResources: []metav1.APIResource{
			{Name: "nodes", Namespaced: false, Kind: "NodeMetrics", Verbs: verbs},
			{Name: "pods", Namespaced: true, Kind: "PodMetrics", Verbs: verbs},
		},
	}
}

// fail answers err as a metav1.Status: refusals with their status, the
// apiserver's errors with theirs, anything else as 500 (logged).
func (h *Handler) fail(w http.ResponseWriter, err error) {
	var st metav1.Status
	var rf *refusal
	var api apierrors.APIStatus
	switch {
	case errors.As(err, &rf):
		st = metav1.Status{Status: metav1.StatusFailure, Code: int32(rf.code), Message: rf.msg}
		if rf.code == http.StatusUnauthorized {
			st.Reason = metav1.StatusReasonUnauthorized
		} else {
			st.Reason = metav1.StatusReasonForbidden
		}
	case errors.As(err, &api):
		st = api.Status()
	default:
		if h.Log != nil {
			h.Log.Warn("metrics API request failed", "error", err)
		}
		st = apierrors.NewInternalError(err).ErrStatus
	}
	st.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	writeJSON(w, int(st.Code), &st)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

package join

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kedge/kedge/server/pki"
	"github.com/kedge/kedge/shared/joinapi"
	"github.com/kedge/kedge/shared/token"
)

// Members changes the embedded etcd cluster's membership. It is implemented
// by etcdcluster.Cluster; errors wrapping ErrConflict or ErrUnavailable are
// answered 409 and 503.
type Members interface {
	// AddLearner adds a non-voting member named name at peerURL (or finds
	// the one an earlier, unfinished join of the same server added) and
	// returns all members, named for the new member's initial cluster.
	AddLearner(ctx context.Context, name, peerURL string) ([]joinapi.EtcdMember, error)
}

var (
	// ErrConflict means the cluster cannot take this server as asked.
	ErrConflict = errors.New("conflict")
	// ErrUnavailable means the server may retry later.
	ErrUnavailable = errors.New("unavailable")
)

// serverJoin answers joinapi.ServerJoinPath. Everything in the request is
// checked before the only write, adding the etcd learner.
func (h *Handler) serverJoin(w http.ResponseWriter, r *http.Request) {
	resp, err := h.joinServer(r)
	if err != nil {
		status := http.StatusInternalServerError
		var he *httpError
		switch {
		case errors.As(err, &he):
			status = he.status
		case errors.Is(err, ErrConflict):
			status = http.StatusConflict
		case errors.Is(err, ErrUnavailable):
			status = http.StatusServiceUnavailable
		}
		if status >= 500 {
			h.Log.Error("server join failed", "remote", r.RemoteAddr, "error", err)
		} else {
			h.Log.Warn("server join refused", "remote", r.RemoteAddr, "reason", reason(err))
		}
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="kedge"`)
		}
		http.Error(w, err.Error(), status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(resp)
}

func (h *Handler) joinServer(r *http.Request) (*joinapi.ServerJoinResponse, error) {
	if r.Method != http.MethodPost {
		return nil, fail(http.StatusMethodNotAllowed, "use POST")
	}
	user, secret, ok := r.BasicAuth()
	switch {
	case ok && user != token.BootstrapUser && equal(secret, h.ServerSecret()):
	case ok && h.AgentToken.Secret != "" && equal(secret, h.AgentToken.Secret):
		return nil, fail(http.StatusForbidden, "the agent token cannot join a server; use the server token")
	case ok && user == token.BootstrapUser && h.Bootstrap != nil && h.Bootstrap.Authenticate(r.Context(), secret) == nil:
		return nil, fail(http.StatusForbidden, "a bootstrap token cannot join a server; use the server token")
	default:
		return nil, fail(http.StatusUnauthorized, "token rejected")
	}
	var req joinapi.ServerJoinRequest
	if err := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBody)).Decode(&req); err != nil {
		return nil, fail(http.StatusBadRequest, "malformed request: %v", err)
	}
	if errs := validation.IsDNS1123Subdomain(req.NodeName); len(errs) > 0 {
		return nil, fail(http.StatusBadRequest, "node name %q: %s", req.NodeName, strings.Join(errs, "; "))
	}
	if err := checkPeerURL(req.EtcdPeerURL); err != nil {
		return nil, fail(http.StatusBadRequest, "etcd peer URL %q: %v", req.EtcdPeerURL, err)
	}
	if diff := ClusterDiff(req.Cluster, h.Cluster); diff != "" {
		return nil, fail(http.StatusConflict, "the joining server's cluster settings differ from the cluster's: %s", diff)
	}
	if h.Members == nil {
		return nil, fail(http.StatusConflict, "this server does not run an embedded etcd cluster; servers join one started with --cluster-init")
	}
	shared, err := pki.ReadShared(h.TLSDir)
	if err != nil {
		return nil, err
	}
	members, err := h.Members.AddLearner(r.Context(), req.NodeName, req.EtcdPeerURL)
	if err != nil {
		return nil, err
	}
	h.Log.Info("server joined as etcd learner", "node", req.NodeName, "peer", req.EtcdPeerURL)
	resp := &joinapi.ServerJoinResponse{
		PKI:         make(map[string]string, len(shared)),
		AgentToken:  h.AgentToken.Secret,
		Cluster:     h.Cluster,
		EtcdMembers: members,
	}
	for name, b := range shared {
		resp.PKI[name] = string(b)
	}
	return resp, nil
}

// checkPeerURL accepts https://IP:port and nothing else.
func checkPeerURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a URL")
	}
	if u.Scheme != "https" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return errors.New("want https://IP:port")
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || net.ParseIP(host) == nil {
		return errors.New("want https://IP:port")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return errors.New("port is not 1-65535")
	}
	return nil
}

// ClusterDiff describes how the joiner's settings differ from the cluster's,
// or returns "" when they are equal.
func ClusterDiff(joiner, cluster joinapi.Cluster) string {
	var d []string
	for _, f := range []struct{ flag, mine, theirs string }{
		{"--cluster-cidr", joiner.ClusterCIDR, cluster.ClusterCIDR},
		{"--service-cidr", joiner.ServiceCIDR, cluster.ServiceCIDR},
		{"--cluster-dns", joiner.ClusterDNS, cluster.ClusterDNS},
		{"--cluster-domain", joiner.ClusterDomain, cluster.ClusterDomain},
	} {
		if f.mine != f.theirs {
			d = append(d, fmt.Sprintf("%s is %s here but %s in the cluster", f.flag, f.mine, f.theirs))
		}
	}
	return strings.Join(d, "; ")
}

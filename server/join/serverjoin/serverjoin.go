// Package serverjoin is the joining server's side of the server-join API:
// pin the first server's CA with the token (as agents do), ask to be added
// to the embedded etcd cluster, and install what the servers share.
package serverjoin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	agentjoin "github.com/kedge/kedge/agent/join"
	"github.com/kedge/kedge/embedded/backoff"
	"github.com/kedge/kedge/server/join"
	"github.com/kedge/kedge/shared/joinapi"
	"github.com/kedge/kedge/shared/token"
)

// permanent is a refusal that retrying cannot change.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// Join asks server to add this server, retrying with backoff (1 s to 10 s)
// while the server is unreachable or busy, until ctx ends. Refusals (CA
// mismatch, rejected token, other cluster settings, a bad request) return at
// once. The response is checked against the pinned CA and req.Cluster.
func Join(ctx context.Context, server string, tok token.Token, req joinapi.ServerJoinRequest, log *slog.Logger) (*joinapi.ServerJoinResponse, error) {
	retry := backoff.Backoff{Min: time.Second, Max: 10 * time.Second}
	for {
		resp, err := joinOnce(ctx, server, tok, req)
		if err == nil {
			return resp, nil
		}
		var p permanent
		if errors.As(err, &p) || errors.Is(err, agentjoin.ErrCAMismatch) {
			return nil, err
		}
		wait := retry.Next()
		log.Warn("cannot join the server yet; retrying", "server", server, "error", err, "retry_in", wait)
		if !backoff.Sleep(ctx, wait) {
			return nil, fmt.Errorf("join %s: %w (last error: %v)", server, ctx.Err(), err)
		}
	}
}

func joinOnce(ctx context.Context, server string, tok token.Token, req joinapi.ServerJoinRequest) (*joinapi.ServerJoinResponse, error) {
	ca, err := agentjoin.FetchCA(ctx, server, tok)
	if err != nil {
		return nil, err
	}
	status, data, err := agentjoin.PostPinned(ctx, server, joinapi.ServerJoinPath, ca, tok.Username, tok.Secret, req, 30*time.Second)
	if err != nil {
		return nil, fmt.Errorf("server join: %w", err)
	}
	msg := strings.TrimSpace(string(data))
	switch {
	case status == http.StatusOK:
	case status == http.StatusUnauthorized:
		return nil, permanent{errors.New("the server rejected the token")}
	case status == http.StatusForbidden:
		return nil, permanent{fmt.Errorf("the server refused the token: %s", msg)}
	case status >= 400 && status < 500:
		return nil, permanent{fmt.Errorf("the server refused to add this server: %s", msg)}
	default:
		return nil, fmt.Errorf("server join: %d %s: %s", status, http.StatusText(status), msg)
	}
	var out joinapi.ServerJoinResponse
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("decode server join response: %w", err)
	}
	if out.PKI["server-ca.crt"] != string(ca) {
		return nil, permanent{errors.New("the server answered with a CA other than the pinned one")}
	}
	if diff := join.ClusterDiff(req.Cluster, out.Cluster); diff != "" {
		return nil, permanent{fmt.Errorf("this server's cluster settings differ from the cluster's: %s", diff)}
	}
	return &out, nil
}

// InitialCluster renders members as etcd's initial-cluster flag.
func InitialCluster(members []joinapi.EtcdMember) string {
	var parts []string
	for _, m := range members {
		for _, u := range m.PeerURLs {
			parts = append(parts, m.Name+"="+u)
		}
	}
	return strings.Join(parts, ",")
}

package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/kedge/kedge/server/config"
	"github.com/kedge/kedge/server/datastore"
	"github.com/kedge/kedge/server/join/serverjoin"
	"github.com/kedge/kedge/server/pki"
	"github.com/kedge/kedge/shared/joinapi"
	"github.com/kedge/kedge/shared/token"
)

// joinTimeout bounds how long a joining server waits for the server it joins.
const joinTimeout = 5 * time.Minute

// joinCluster makes this server a member of cc.Server's cluster unless it
// is one already (its etcd member has data; then restarts use the local
// data). It refuses a data dir that holds another cluster's CA before
// contacting the server, installs the shared CAs and keys and the agent
// token, and returns etcd's initial cluster for the member's first start
// ("" when the member's data is already there).
func joinCluster(ctx context.Context, cc *config.Completed, log *slog.Logger) (string, error) {
	if ca, err := os.ReadFile(filepath.Join(cc.Paths.TLSDir, "server-ca.crt")); err == nil && token.CAHash(ca) != cc.GivenToken.CAHash {
		return "", fmt.Errorf("--data-dir %s belongs to another cluster (its server CA is not the one --token pins); use an empty --data-dir to join %s", cc.DataDir, cc.Server)
	}
	if st, err := os.Stat(filepath.Join(cc.Paths.EtcdDir, "member")); err == nil && st.IsDir() {
		log.Info("using the local etcd member; not joining again", "server", cc.Server)
		return "", nil
	}
	peerURL := datastore.EtcdPeerURL(cc)
	joinCtx, cancel := context.WithTimeout(ctx, joinTimeout)
	defer cancel()
	resp, err := serverjoin.Join(joinCtx, cc.Server, cc.GivenToken, joinapi.ServerJoinRequest{
		NodeName:    cc.NodeName,
		EtcdPeerURL: peerURL,
		Cluster: joinapi.Cluster{ClusterDNS: cc.ClusterDNS, ClusterDomain: cc.ClusterDomain,
			ClusterCIDR: cc.ClusterCIDR, ServiceCIDR: cc.ServiceCIDR},
	}, log)
	if err != nil {
		return "", fmt.Errorf("join %s: %w", cc.Server, err)
	}
	files := make(map[string][]byte, len(resp.PKI))
	for name, s := range resp.PKI {
		files[name] = []byte(s)
	}
	if err := pki.InstallShared(cc.Paths.TLSDir, files); err != nil {
		return "", err
	}
	if resp.AgentToken != "" {
		agent := token.Token{Username: token.NodeUser, Secret: resp.AgentToken}
		if _, err := token.EnsureAgent(cc.Paths.AgentTokenFile, agent, files["server-ca.crt"]); err != nil {
			return "", fmt.Errorf("store the cluster's agent token: %w", err)
		}
	}
	log.Info("joined the cluster as an etcd learner", "server", cc.Server, "etcd_members", len(resp.EtcdMembers), "peer", peerURL)
	return serverjoin.InitialCluster(resp.EtcdMembers), nil
}

// Package etcd runs an embedded etcd member in-process.
package etcd

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.etcd.io/etcd/server/v3/embed"

	"github.com/kedge/kedge/embedded/component"
	"github.com/kedge/kedge/embedded/etcdcheck"
)

// TLSFiles are the etcd member's certificates. Clients and peers must present
// certificates signed by the respective CA.
type TLSFiles struct {
	ServerCA, ServerCert, ServerKey string
	PeerCA, PeerCert, PeerKey       string
	// ClientCert and ClientKey are used for the readiness check.
	ClientCert, ClientKey string
}

// Etcd is one embedded etcd member serving clients over TLS.
type Etcd struct {
	Member  string
	DataDir string
	// ClientIPs are the addresses to serve clients on; the first is advertised.
	ClientIPs  []net.IP
	ClientPort int
	PeerIP     net.IP
	PeerPort   int
	TLS        TLSFiles
	// InitialCluster is name=peerURL,... of every member, this one
	// included, for a member joining an existing cluster (then the member
	// starts with cluster state "existing"); empty for a new one-member
	// cluster. Ignored once the data dir holds the member's state.
	InitialCluster string
	// ForceNewCluster starts the member as the only one of its cluster,
	// with its data (etcd's --force-new-cluster): the other members are
	// removed from the membership.
	ForceNewCluster bool
	// StartTimeout bounds the wait for the member to be ready.
	StartTimeout time.Duration
	Debug        bool
	Log          *slog.Logger
}

var _ component.Component = (*Etcd)(nil)

// Name implements component.Component.
func (e *Etcd) Name() string { return "etcd" }

// ClientURL is the URL local clients (the apiserver) use.
func (e *Etcd) ClientURL() string {
	return "https://" + net.JoinHostPort(e.ClientIPs[0].String(), strconv.Itoa(e.ClientPort))
}

func dirExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

func hostURL(ip net.IP, port int) url.URL {
	return url.URL{Scheme: "https", Host: net.JoinHostPort(ip.String(), strconv.Itoa(port))}
}

func (e *Etcd) config() *embed.Config {
	cfg := embed.NewConfig()
	cfg.Name = e.Member
	cfg.Dir = e.DataDir
	cfg.ListenClientUrls = nil
	for _, ip := range e.ClientIPs {
		cfg.ListenClientUrls = append(cfg.ListenClientUrls, hostURL(ip, e.ClientPort))
	}
	cfg.AdvertiseClientUrls = cfg.ListenClientUrls[:1]
	peer := hostURL(e.PeerIP, e.PeerPort)
	cfg.ListenPeerUrls = []url.URL{peer}
	cfg.AdvertisePeerUrls = []url.URL{peer}
	cfg.InitialCluster = e.Member + "=" + peer.String()
	cfg.ClusterState = embed.ClusterStateFlagNew
	switch {
	case e.InitialCluster != "":
		cfg.InitialCluster = e.InitialCluster
		cfg.ClusterState = embed.ClusterStateFlagExisting
	case dirExists(filepath.Join(e.DataDir, "member")):
		// A member with data restarts from its WAL, where cluster state is
		// ignored; should the WAL be gone, "existing" makes etcd fail
		// instead of bootstrapping a new one-member cluster over it.
		cfg.ClusterState = embed.ClusterStateFlagExisting
	}
	cfg.InitialClusterToken = InitialClusterToken
	cfg.ForceNewCluster = e.ForceNewCluster
	cfg.ClientTLSInfo.TrustedCAFile = e.TLS.ServerCA
	cfg.ClientTLSInfo.CertFile = e.TLS.ServerCert
	cfg.ClientTLSInfo.KeyFile = e.TLS.ServerKey
	cfg.ClientTLSInfo.ClientCertAuth = true
	cfg.PeerTLSInfo.TrustedCAFile = e.TLS.PeerCA
	cfg.PeerTLSInfo.CertFile = e.TLS.PeerCert
	cfg.PeerTLSInfo.KeyFile = e.TLS.PeerKey
	cfg.PeerTLSInfo.ClientCertAuth = true
	// The apiserver compacts every 5 minutes; etcd keeps fewer raft entries
	// in memory than its default to suit small devices.
	cfg.SnapshotCount = 10000
	cfg.Logger = "zap"
	cfg.LogLevel = "warn"
	if e.Debug {
		cfg.LogLevel = "info"
	}
	cfg.LogOutputs = []string{"stderr"}
	return cfg
}

// Run starts the member, waits until it has joined its cluster and accepts a
// write (a new member added as a learner accepts none until another member
// promotes it), and serves until ctx is done; then it closes the member, which
// flushes and closes the backend.
func (e *Etcd) Run(ctx context.Context, ready func()) error {
	timeout := e.StartTimeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	member, err := embed.StartEtcd(e.config())
	if err != nil {
		return fmt.Errorf("start etcd: %w", err)
	}
	defer member.Close()
	select {
	case <-member.Server.ReadyNotify():
	case err := <-member.Err():
		return fmt.Errorf("etcd: %w", err)
	case <-time.After(timeout):
		return fmt.Errorf("etcd not ready within %s", timeout)
	case <-ctx.Done():
		return nil
	}
	checkCtx, cancel := context.WithTimeout(ctx, timeout)
	err = etcdcheck.Write(checkCtx, etcdcheck.Target{
		Endpoints: []string{e.ClientURL()},
		CAFile:    e.TLS.ServerCA, CertFile: e.TLS.ClientCert, KeyFile: e.TLS.ClientKey,
	})
	cancel()
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("etcd write check: %w", err)
	}
	ready()
	select {
	case <-ctx.Done():
		return nil
	case err := <-member.Err():
		return fmt.Errorf("etcd: %w", err)
	}
}

// Package datastore chooses and builds the component that stores cluster
// state: kine over SQLite (default) or an external SQL database, an embedded
// etcd member, or a check of an external etcd.
package datastore

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/kedge/kedge/embedded/component"
	"github.com/kedge/kedge/embedded/etcd"
	"github.com/kedge/kedge/embedded/etcdcheck"
	"github.com/kedge/kedge/embedded/kine"
	"github.com/kedge/kedge/server/config"
	"github.com/kedge/kedge/server/control"
	"github.com/kedge/kedge/server/pki"
)

// StartTimeout bounds how long a datastore may take to accept its first write.
const StartTimeout = 20 * time.Second

// JoinStartTimeout bounds how long a new etcd member may take to be promoted
// from learner and accept its first write.
const JoinStartTimeout = 100 * time.Second

// EtcdPeerURL is where the other members reach this server's etcd member.
func EtcdPeerURL(cc *config.Completed) string {
	return "https://" + net.JoinHostPort(cc.NodeIP.String(), strconv.Itoa(cc.EtcdPeerPort))
}

// New returns the datastore component and how the apiserver reaches it.
// initialCluster is the embedded etcd's initial cluster when this server
// joins an existing one (see etcd.Etcd), else empty.
func New(cc *config.Completed, tls *pki.Files, initialCluster string, log *slog.Logger) (component.Component, control.Storage) {
	switch cc.Datastore {
	case config.DatastoreEmbeddedEtcd:
		e := &etcd.Etcd{
			InitialCluster: initialCluster,
			Member:         cc.NodeName,
			DataDir:        cc.Paths.EtcdDir,
			ClientIPs:      config.UniqueIPs(net.ParseIP("127.0.0.1"), cc.NodeIP),
			ClientPort:     cc.EtcdClientPort,
			PeerIP:         cc.NodeIP,
			PeerPort:       cc.EtcdPeerPort,
			TLS: etcd.TLSFiles{
				ServerCA: tls.EtcdServerCA, ServerCert: tls.EtcdServingCert, ServerKey: tls.EtcdServingKey,
				PeerCA: tls.EtcdPeerCA, PeerCert: tls.EtcdPeerCert, PeerKey: tls.EtcdPeerKey,
				ClientCert: tls.EtcdClientCert, ClientKey: tls.EtcdClientKey,
			},
			Debug: cc.Debug,
			Log:   log,
		}
		if initialCluster != "" {
			e.StartTimeout = JoinStartTimeout
		}
		return e, control.Storage{
			Servers: []string{e.ClientURL()},
			CAFile:  tls.EtcdServerCA, CertFile: tls.EtcdClientCert, KeyFile: tls.EtcdClientKey,
		}
	case config.DatastoreExternalEtcd:
		st := control.Storage{
			Servers: strings.Split(cc.DatastoreEndpoint, ","),
			CAFile:  cc.DatastoreCAFile, CertFile: cc.DatastoreCertFile, KeyFile: cc.DatastoreKeyFile,
		}
		return &externalEtcd{target: etcdcheck.Target{
			Endpoints: st.Servers, CAFile: st.CAFile, CertFile: st.CertFile, KeyFile: st.KeyFile,
		}}, st
	default:
		listener := "unix://" + cc.Paths.KineSocket
		k := &kine.Kine{Endpoint: cc.KineEndpoint, Listener: listener, StartTimeout: StartTimeout, Log: log,
			CompactInterval: cc.DatastoreCompactInterval}
		if cc.DatastoreEndpoint == "" {
			// kedge's own SQLite file: kedge keeps it bounded.
			k.DataDir = cc.Paths.DBDir
			k.SQLiteFile = cc.Paths.SQLiteFile
			k.MaintainInterval = cc.DatastoreMaintainInterval
		}
		return k,
			control.Storage{Servers: []string{listener}}
	}
}

// externalEtcd is ready when the external etcd accepts a write; it holds nothing.
type externalEtcd struct{ target etcdcheck.Target }

func (e *externalEtcd) Name() string { return "external-etcd" }

func (e *externalEtcd) Run(ctx context.Context, ready func()) error {
	checkCtx, cancel := context.WithTimeout(ctx, StartTimeout)
	defer cancel()
	if err := etcdcheck.Write(checkCtx, e.target); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("external etcd did not accept a write within %s: %w", StartTimeout, err)
	}
	ready()
	<-ctx.Done()
	return nil
}

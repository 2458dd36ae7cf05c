package etcd

import (
	"context"
	"fmt"

	clientsnapshot "go.etcd.io/etcd/client/v3/snapshot"
	utlsnapshot "go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.uber.org/zap"

	"github.com/kedge/kedge/embedded/etcdcheck"
)

// InitialClusterToken is the token of every cluster kedge bootstraps,
// including one restored from a snapshot.
const InitialClusterToken = "kedge"

// SaveSnapshot streams a snapshot of the one member at t (etcd's
// Maintenance.Snapshot API: a consistent copy of its backend, with etcd's
// sha256 appended) into dst, a new file that is removed again on error.
func SaveSnapshot(ctx context.Context, t etcdcheck.Target, dst string) error {
	if len(t.Endpoints) != 1 {
		return fmt.Errorf("an etcd snapshot is taken from one member, not %d", len(t.Endpoints))
	}
	cfg, err := etcdcheck.Config(ctx, t)
	if err != nil {
		return fmt.Errorf("etcd snapshot: %w", err)
	}
	if _, err := clientsnapshot.SaveWithVersion(ctx, zap.NewNop(), cfg, dst); err != nil {
		return fmt.Errorf("etcd snapshot from %s: %w", t.Endpoints[0], err)
	}
	return nil
}

// RestoreSnapshot makes dataDir (which must not exist or be empty) the data
// dir of a new one-member cluster holding the keys of the snapshot db
// (SaveSnapshot's file; its sha256 is checked): etcd's own restore
// (etcdutl snapshot restore), with member and peerURL as this member's
// name and peer URL. The member then starts from it with its usual
// configuration.
func RestoreSnapshot(db, dataDir, member, peerURL string) error {
	err := utlsnapshot.NewV3(zap.NewNop()).Restore(utlsnapshot.RestoreConfig{
		SnapshotPath:        db,
		Name:                member,
		OutputDataDir:       dataDir,
		PeerURLs:            []string{peerURL},
		InitialCluster:      member + "=" + peerURL,
		InitialClusterToken: InitialClusterToken,
	})
	if err != nil {
		return fmt.Errorf("restore etcd snapshot: %w", err)
	}
	return nil
}

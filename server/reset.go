package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/kedge/kedge/embedded/etcd"
	"github.com/kedge/kedge/server/config"
	"github.com/kedge/kedge/server/datastore"
)

// ResetEtcdMembership is `kedge server --cluster-reset` without
// --restore-path: it makes this server's embedded etcd member the only
// member of its cluster, with all its data (etcd's --force-new-cluster),
// for a cluster that lost quorum; the other servers then re-join with
// --server after their data dirs are moved away. The etcd dir is first
// copied to etcd.before-reset-<unix time>. The server must be stopped; the
// member is started once, checked with a write, and stopped again.
func ResetEtcdMembership(ctx context.Context, cc *config.Completed, log *slog.Logger, now time.Time) error {
	if cc.Datastore != config.DatastoreEmbeddedEtcd || !dirExists(filepath.Join(cc.Paths.EtcdDir, "member")) {
		return fmt.Errorf("--cluster-reset without --restore-path resets the membership of an embedded etcd, and --data-dir %s has none", cc.DataDir)
	}
	if err := preflight(cc); err != nil {
		return err
	}
	p := &prepared{cc: cc, log: log}
	if err := p.credentials(); err != nil {
		return err
	}
	if err := copyDir(cc.Paths.EtcdDir, fmt.Sprintf("%s.before-reset-%d", cc.Paths.EtcdDir, now.Unix())); err != nil {
		return fmt.Errorf("keep a copy of the etcd dir: %w", err)
	}
	store, _ := datastore.New(cc, p.tls, "", log)
	member, ok := store.(*etcd.Etcd)
	if !ok {
		return errors.New("the datastore is not an embedded etcd member")
	}
	member.ForceNewCluster = true
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ready := false
	if err := member.Run(ctx, func() { ready = true; cancel() }); err != nil {
		return fmt.Errorf("reset the etcd membership: %w", err)
	}
	if !ready {
		return errors.New("reset the etcd membership: interrupted before the member was ready; run it again")
	}
	return nil
}

func dirExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// copyDir copies the regular files and directories below src to a new dst.
func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.Mkdir(target, info.Mode().Perm())
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, info.Mode().Perm())
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}

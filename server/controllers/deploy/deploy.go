// Package deploy applies the YAML manifests in the server's manifests
// directory (<data-dir>/server/manifests): the packaged add-ons, which Stage
// writes there at start, and any file a user drops there.
//
// Every *.yaml file (not hidden) is templated (see Variables), parsed and
// server-side applied with field manager FieldManager and force; a file is
// applied again when its content changes (the directory is polled and the
// files' checksums compared; a changed file is applied once it has been
// left alone for a second), and at every start. Links to files are
// followed; subdirectories are not read. What each file applied is
// recorded (see RecordName), so that objects removed from a changed file,
// and the objects of a deleted file, are deleted. A malformed file is
// reported (log and an Event, see ReasonInvalid) and leaves the other files,
// and what it applied before, alone; a file whose objects fail to apply is
// retried, after a poll interval and then less and less often (up to every
// 5 minutes) while it keeps failing unchanged.
//
// Several servers (a shared datastore or embedded etcd): every server runs
// a Deployer on its own directory, with the same field manager, and records
// what it applied under its own name. An object is deleted only when no
// record of any server still lists it, so an object stays while any
// server's directory still has it, and files dropped on any one server are
// applied. Servers with different contents for one object apply in turn;
// the last apply wins (after a rolling upgrade, every server has the new
// packaged files). Applying the same files on every server is idempotent:
// same field manager, same content, no conflicts. --disable must be given
// to every server. A server that leaves the cluster for good leaves its
// records (kube-system/kedge-manifest-<server>-...); delete them by name.
package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/kedge/kedge/embedded/component"
)

// Deployer keeps the cluster in step with the manifests directory.
type Deployer struct {
	// Dir is the manifests directory; it must exist.
	Dir string
	// Server is this server's name; records and Events carry it.
	Server string
	Vars   Variables
	// Ignore, if set, names files to treat as absent (the disabled
	// packaged add-ons): their objects are removed.
	Ignore  func(file string) bool
	Client  kubernetes.Interface
	Dynamic dynamic.Interface
	// Interval between polls of the directory (default 5 s).
	Interval time.Duration
	Log      *slog.Logger
}

var _ component.Component = (*Deployer)(nil)

// Name implements component.Component.
func (d *Deployer) Name() string { return "deploy" }

// Run applies the directory, is ready once a first pass has run (failed
// files are reported, not waited for), and then polls until ctx ends.
func (d *Deployer) Run(ctx context.Context, ready func()) error {
	interval := d.Interval
	if interval <= 0 {
		interval = 5 * time.Second
	}
	s := &state{d: d, apply: newApplier(d.Client.Discovery(), d.Dynamic), interval: interval,
		done: map[string]string{}, reported: map[string]string{}, failed: map[string]failure{}}
	for {
		if err := s.pass(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			d.Log.Warn("apply manifests", "error", err)
		} else {
			ready()
		}
		wait := interval
		if s.unsettled {
			wait = min(interval, settle)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// file is one manifest in the directory.
type file struct {
	name     string
	data     []byte
	checksum string
	modTime  time.Time
	// err is why the file could not be read; it is then neither applied
	// nor taken for removed.
	err error
}

// settle is how long a file must have been unmodified to be applied, so
// that a file still being written (not renamed into place) is not applied
// half: a truncated file would delete the objects of its missing part.
const settle = time.Second

// readDir returns the *.yaml files of dir (regular files or links to them,
// not hidden), minus the ignored ones.
func (d *Deployer) readDir() (map[string]file, error) {
	entries, err := os.ReadDir(d.Dir)
	if err != nil {
		return nil, fmt.Errorf("read manifests: %w", err)
	}
	files := map[string]file{}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || filepath.Ext(name) != ".yaml" || (d.Ignore != nil && d.Ignore(name)) {
			continue
		}
		path := filepath.Join(d.Dir, name)
		fi, err := os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			if _, lerr := os.Lstat(path); lerr != nil {
				continue // removed since the listing
			}
			// A dangling link (its target not mounted yet, or being
			// replaced) is unreadable, not removed: what it applied stays.
			err = fmt.Errorf("%s is a link to a missing file: %w", name, err)
		}
		if err == nil && !fi.Mode().IsRegular() {
			continue
		}
		f := file{name: name, err: err}
		if err == nil {
			f.modTime = fi.ModTime()
			f.data, f.err = os.ReadFile(path)
			if errors.Is(f.err, fs.ErrNotExist) {
				continue
			}
		}
		sum := sha256.Sum256(f.data)
		f.checksum = hex.EncodeToString(sum[:])
		files[name] = f
	}
	return files, nil
}

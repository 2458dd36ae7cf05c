// Package deploy applies the YAML manifests in the server's manifests
// directory (<data-dir>/server/manifests): the packaged add-ons, which Stage
// writes there at start, and any file a user drops there.
//
// Every *.yaml file (not hidden) is templated (see Variables), parsed and
// server-side applied with field manager FieldManager and force; a file is
// applied again when its content changes (the directory is polled and the
// files' checksums compared), and at every start. What each file applied is
// recorded (see RecordName), so that objects removed from a changed file,
// and the objects of a deleted file, are deleted. A malformed file is
// reported (log and an Event, see ReasonInvalid) and leaves the other files,
// and what it applied before, alone; a file whose objects fail to apply is
// retried every poll.
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
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
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
	s := &state{d: d, apply: newApplier(d.Client.Discovery(), d.Dynamic),
		done: map[string]string{}, reported: map[string]string{}}
	for {
		if err := s.pass(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			d.Log.Warn("apply manifests", "error", err)
		} else {
			ready()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}

// state is the Deployer's memory between passes, owned by Run's goroutine.
type state struct {
	d     *Deployer
	apply *applier
	// done maps a file to the checksum last applied completely (or found
	// invalid); such a file is not applied again until it changes.
	done map[string]string
	// reported maps a file to the last error reported about it, so that a
	// file that keeps failing the same way is reported once.
	reported map[string]string
	// recorded holds the files this server has records of (nil until the
	// records are first read); a recorded file that is gone is removed.
	recorded map[string]bool
}

// file is one manifest in the directory.
type file struct {
	name     string
	data     []byte
	checksum string
}

// readDir returns the *.yaml files of dir, minus the ignored ones.
func (d *Deployer) readDir() (map[string]file, error) {
	entries, err := os.ReadDir(d.Dir)
	if err != nil {
		return nil, fmt.Errorf("read manifests: %w", err)
	}
	files := map[string]file{}
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || strings.HasPrefix(name, ".") || filepath.Ext(name) != ".yaml" {
			continue
		}
		if d.Ignore != nil && d.Ignore(name) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(d.Dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since the listing
		}
		if err != nil {
			return nil, fmt.Errorf("read manifests: %w", err)
		}
		sum := sha256.Sum256(data)
		files[name] = file{name: name, data: data, checksum: hex.EncodeToString(sum[:])}
	}
	return files, nil
}

// result is the outcome of applying (or removing) one file in a pass.
type result struct {
	rec      *record
	old      []Ref // what the record listed before
	checksum string
	err      error
	removed  bool // the file is gone: its record goes too
}

// pass applies the files that changed since they were last applied and
// removes what deleted files applied. It returns an error only when it
// could not read the directory or the records; a file's problems are
// reported and retried.
func (s *state) pass(ctx context.Context) error {
	d := s.d
	files, err := d.readDir()
	if err != nil {
		return err
	}
	var work []string
	for name, f := range files {
		if s.done[name] != f.checksum {
			work = append(work, name)
		}
	}
	for name := range s.recorded {
		if _, ok := files[name]; !ok {
			work = append(work, name)
		}
	}
	if len(work) == 0 && s.recorded != nil {
		return nil // nothing changed: no request to the apiserver
	}
	all, err := listRecords(ctx, d.Client)
	if err != nil {
		return err
	}
	mine := map[string]*record{}
	s.recorded = map[string]bool{}
	for _, r := range all {
		if r.Server == d.Server {
			mine[r.File] = r
			s.recorded[r.File] = true
			if _, ok := files[r.File]; !ok && !slices.Contains(work, r.File) {
				work = append(work, r.File)
			}
		}
	}
	slices.Sort(work)

	// Apply every changed file first, so that an object that moved from one
	// file to another is not deleted on the way.
	results := map[string]*result{}
	for _, name := range work {
		rec := mine[name]
		if rec == nil {
			rec = &record{Server: d.Server, File: name}
		}
		res := &result{rec: rec, old: rec.Objects}
		results[name] = res
		f, present := files[name]
		if !present {
			res.removed = true
			rec.Objects = nil
			continue
		}
		res.checksum = f.checksum
		objs, err := s.parse(f.data)
		if err != nil {
			s.invalid(ctx, rec, f, err)
			delete(results, name)
			continue
		}
		rec.Objects = rec.Objects[:0:0]
		rec.Objects, res.err = s.apply.applyAll(ctx, objs)
	}

	// Delete what no record (of any server, any file) lists any more.
	keep := map[string]bool{}
	for _, r := range all {
		for _, ref := range r.Objects {
			keep[ref.Key()] = true
		}
	}
	for _, res := range results { // records of new files are not in all
		for _, ref := range res.rec.Objects {
			keep[ref.Key()] = true
		}
	}
	for _, name := range work {
		res := results[name]
		if res == nil {
			continue
		}
		for _, ref := range stale(res.old, keep) {
			if err := s.apply.remove(ctx, ref); err != nil {
				// Keep it recorded, so that the next pass tries again.
				res.rec.Objects = append(res.rec.Objects, ref)
				res.err = errors.Join(res.err, err)
			}
		}
		s.finish(ctx, name, res)
	}
	return nil
}

// parse templates and parses a file.
func (s *state) parse(data []byte) ([]*unstructured.Unstructured, error) {
	data, err := s.d.Vars.Substitute(data)
	if err != nil {
		return nil, err
	}
	objs, err := Parse(data)
	if err != nil {
		return nil, err
	}
	order(objs)
	return objs, nil
}

// invalid reports a file that cannot be parsed; what it applied before stays.
func (s *state) invalid(ctx context.Context, rec *record, f file, err error) {
	d := s.d
	s.done[f.name] = f.checksum
	rec.Error = err.Error()
	if saveErr := rec.save(ctx, d.Client); saveErr != nil {
		d.Log.Warn("record invalid manifest", "file", f.name, "error", saveErr)
		delete(s.done, f.name)
	} else {
		s.recorded[f.name] = true
	}
	s.report(ctx, rec, ReasonInvalid, err)
}

// finish stores a file's record and reports its outcome.
func (s *state) finish(ctx context.Context, name string, res *result) {
	d := s.d
	rec := res.rec
	if res.err != nil {
		rec.Error = res.err.Error()
	} else {
		rec.Error = ""
	}
	if res.removed && len(rec.Objects) == 0 {
		if err := rec.delete(ctx, d.Client); err != nil {
			d.Log.Warn("forget removed manifest", "file", name, "error", err)
			return
		}
		delete(s.recorded, name)
		d.Log.Info("removed the objects of a deleted manifest", "file", name, "objects", len(res.old))
		delete(s.done, name)
		delete(s.reported, name)
		return
	}
	rec.Checksum = res.checksum
	if err := rec.save(ctx, d.Client); err != nil {
		res.err = errors.Join(res.err, err)
	} else {
		s.recorded[name] = true
	}
	if res.err != nil {
		delete(s.done, name)
		s.report(ctx, rec, ReasonApplyFailed, res.err)
		return
	}
	s.done[name] = res.checksum
	delete(s.reported, name)
	d.Log.Info("applied manifest", "file", name, "objects", len(rec.Objects))
	if err := event(ctx, d.Client, rec, corev1.EventTypeNormal, ReasonApplied,
		fmt.Sprintf("applied %d objects", len(rec.Objects))); err != nil {
		d.Log.Debug("event", "error", err)
	}
}

// report logs and records a Warning Event about a file, unless the same
// error was reported last time.
func (s *state) report(ctx context.Context, rec *record, reason string, err error) {
	d := s.d
	name := rec.File
	msg := err.Error()
	if s.reported[name] == reason+msg {
		return
	}
	s.reported[name] = reason + msg
	d.Log.Error("manifest not applied", "file", name, "reason", reason, "error", msg)
	if evErr := event(ctx, d.Client, rec, corev1.EventTypeWarning, reason, msg); evErr != nil {
		d.Log.Warn("event", "error", evErr)
	}
}

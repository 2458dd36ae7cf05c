package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kedge/kedge/embedded/backoff"
)

// state is the Deployer's memory between passes, owned by Run's goroutine.
type state struct {
	d        *Deployer
	apply    *applier
	interval time.Duration
	// done maps a file to the checksum last applied completely (or found
	// invalid); such a file is not applied again until it changes.
	done map[string]string
	// reported maps a file to the last error reported about it, so that a
	// file that keeps failing the same way is reported once.
	reported map[string]string
	// failed holds the files whose last apply failed, for their back-off.
	failed map[string]failure
	// unsettled is set when a changed file was too fresh to apply.
	unsettled bool
	// recorded holds the files this server has records of (nil until the
	// records are first read); a recorded file that is gone is removed.
	recorded map[string]bool
}

// failure is a file's apply failure: the file, unchanged, is retried at
// next, and the delay doubles each time (from the poll interval up to
// maxRetry).
type failure struct {
	checksum string
	next     time.Time
	delay    time.Duration   // the wait before next
	retry    backoff.Backoff // the waits after it
}

// maxRetry bounds the delay between retries of a file that keeps failing.
const maxRetry = 5 * time.Minute

// due reports whether a file with checksum (the empty string for a removed
// file) is to be applied now: it changed since it last failed, or its
// back-off has passed.
func (s *state) due(name, checksum string) bool {
	f, ok := s.failed[name]
	return !ok || f.checksum != checksum || !time.Now().Before(f.next)
}

// retryLater backs a failed file off.
func (s *state) retryLater(name, checksum string) {
	retry := backoff.Backoff{Min: s.interval, Max: maxRetry}
	if f, ok := s.failed[name]; ok && f.checksum == checksum {
		retry = f.retry
	}
	delay := retry.Next()
	s.failed[name] = failure{checksum: checksum, next: time.Now().Add(delay), delay: delay, retry: retry}
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
// reported and retried (with back-off, see retryLater).
func (s *state) pass(ctx context.Context) error {
	d := s.d
	files, err := d.readDir()
	if err != nil {
		return err
	}
	var work []string
	s.unsettled = false
	for name, f := range files {
		switch {
		case f.err != nil:
			if s.reported[name] != "read"+f.err.Error() {
				s.reported[name] = "read" + f.err.Error()
				d.Log.Error("cannot read manifest", "file", name, "error", f.err)
			}
		case s.done[name] == f.checksum:
		case time.Since(f.modTime) < settle:
			s.unsettled = true // next pass
		case s.due(name, f.checksum):
			work = append(work, name)
		}
	}
	for name := range s.recorded {
		if _, ok := files[name]; !ok && s.due(name, "") {
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
			if _, ok := files[r.File]; !ok && !slices.Contains(work, r.File) && s.due(r.File, "") {
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
	if ctx.Err() != nil {
		return
	}
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
	if ctx.Err() != nil {
		return // stopping: the next start applies the file again
	}
	rec := res.rec
	if res.err != nil {
		rec.Error = res.err.Error()
	} else {
		rec.Error = ""
	}
	if res.removed && len(rec.Objects) == 0 {
		if err := rec.delete(ctx, d.Client); err != nil {
			d.Log.Warn("forget removed manifest", "file", name, "error", err)
			s.retryLater(name, "")
			return
		}
		delete(s.recorded, name)
		delete(s.failed, name)
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
		s.retryLater(name, res.checksum)
		s.report(ctx, rec, ReasonApplyFailed, res.err)
		return
	}
	delete(s.failed, name)
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

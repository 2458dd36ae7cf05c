package apicache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kedge/kedge/shared/atomicfile"
)

// entry is what is cached under one key: a list's items (kept current by
// watch events) or one raw response.
type entry struct {
	Key string `json:"key"`
	// A list: its kind and apiVersion, latest resourceVersion and items by
	// namespace/name (each with kind and apiVersion set).
	List            bool                       `json:"list,omitempty"`
	Kind            string                     `json:"kind,omitempty"`
	APIVersion      string                     `json:"apiVersion,omitempty"`
	ResourceVersion string                     `json:"resourceVersion,omitempty"`
	Items           map[string]json.RawMessage `json:"items,omitempty"`
	// Anything else: the response body and its content type.
	Body        []byte `json:"body,omitempty"`
	ContentType string `json:"contentType,omitempty"`
	// Seen is when a client last asked for this key or a server last
	// answered for it (a response, a watch event or bookmark); Prune drops
	// entries not seen for long.
	Seen time.Time `json:"seen"`
}

// Store keeps entries in memory and in one file each under Dir (0600: the
// cache holds Secrets). Writes reach the disk when Flush is called. It is
// safe for concurrent use.
type Store struct {
	dir   string
	log   *slog.Logger
	mu    sync.Mutex
	byKey map[string]*entry
	dirty map[string]bool
	// staged holds lists being assembled: pages of a paginated list, or the
	// initial events of a watch-list, until they are complete.
	staged map[string]*entry
	// boot holds the keys asked for within bootWindow of opening: what the
	// node's components read when they start, which an offline start
	// needs again however long ago it was read. Prune keeps them.
	boot   map[string]bool
	opened time.Time
	now    func() time.Time
}

// bootWindow is how long after the cache opens the keys its clients ask
// for count as what a start needs.
const bootWindow = 10 * time.Minute

// OpenStore loads every entry found in dir, creating dir (0700) if needed.
// Unreadable files are skipped and logged.
func OpenStore(dir string, log *slog.Logger) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cache dir: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cache dir: %w", err)
	}
	s := &Store{dir: dir, log: log, byKey: map[string]*entry{}, dirty: map[string]bool{}, staged: map[string]*entry{}, boot: map[string]bool{}, now: time.Now}
	s.opened = s.now()
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		var e entry
		if err == nil {
			err = json.Unmarshal(data, &e)
		}
		if err != nil || e.Key == "" {
			log.Warn("skipping an unreadable cache file", "file", f, "error", err)
			continue
		}
		if e.Seen.IsZero() { // written before entries had a time: a full window from now
			e.Seen = s.now()
		}
		s.byKey[e.Key] = &e
	}
	return s, nil
}

func (s *Store) file(key string) string {
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(s.dir, hex.EncodeToString(sum[:16])+".json")
}

// Len is the number of cached entries.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byKey)
}

// Touch records that a client asked for key.
func (s *Store) Touch(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if now.Sub(s.opened) < bootWindow {
		s.boot[key] = true
	}
	if e, ok := s.byKey[key]; ok {
		e.Seen = now // not written: online, the server's answer that follows is
	}
}

// PutRaw caches a whole response body under key.
func (s *Store) PutRaw(key, contentType string, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byKey[key] = &entry{Key: key, Body: body, ContentType: contentType, Seen: s.now()}
	s.dirty[key] = true
}

// Raw returns the body cached under key.
func (s *Store) Raw(key string) (body []byte, contentType string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.byKey[key]
	if !ok || e.List {
		return nil, "", false
	}
	return e.Body, e.ContentType, true
}

// listBody is the JSON shape of a list response.
type listBody struct {
	Kind       string `json:"kind"`
	APIVersion string `json:"apiVersion"`
	Metadata   struct {
		ResourceVersion string `json:"resourceVersion"`
		Continue        string `json:"continue"`
	} `json:"metadata"`
	Items []json.RawMessage `json:"items"`
}

// PutListPage records one page of a list response. A first page (no
// continue token in the request) starts the list; the list replaces the
// cached one when its last page (no continue token in the response) is in.
// It reports false if body is not a list.
func (s *Store) PutListPage(key string, continued bool, body []byte) bool {
	var l listBody
	if err := json.Unmarshal(body, &l); err != nil || !strings.HasSuffix(l.Kind, "List") {
		return false
	}
	itemKind := strings.TrimSuffix(l.Kind, "List")
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.staged[key]
	if !continued || st == nil {
		st = &entry{Key: key, List: true, Kind: l.Kind, APIVersion: l.APIVersion, Items: map[string]json.RawMessage{}}
		s.staged[key] = st
	}
	for _, raw := range l.Items {
		obj, name, err := withTypeMeta(raw, itemKind, l.APIVersion)
		if err == nil {
			st.Items[name] = obj
		}
	}
	st.ResourceVersion = l.Metadata.ResourceVersion
	if l.Metadata.Continue == "" {
		delete(s.staged, key)
		st.Seen = s.now()
		s.byKey[key] = st
		s.dirty[key] = true
	}
	return true
}

// event is one watch event as sent by the apiserver in JSON.
type event struct {
	Type   string          `json:"type"`
	Object json.RawMessage `json:"object"`
}

type objectMeta struct {
	Kind       string `json:"kind"`
	APIVersion string `json:"apiVersion"`
	Metadata   struct {
		Name            string            `json:"name"`
		Namespace       string            `json:"namespace"`
		ResourceVersion string            `json:"resourceVersion"`
		Annotations     map[string]string `json:"annotations"`
	} `json:"metadata"`
}

// initialEventsEnd is the bookmark annotation that ends a watch-list's
// initial events.
const initialEventsEnd = "k8s.io/initial-events-end"

// StartInitialEvents begins assembling the list under key from a
// watch-list's initial events.
func (s *Store) StartInitialEvents(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.staged[key] = &entry{Key: key, List: true, Items: map[string]json.RawMessage{}}
}

// Apply records one watch event for the list under key.
func (s *Store) Apply(key string, ev event) {
	var m objectMeta
	if err := json.Unmarshal(ev.Object, &m); err != nil {
		return
	}
	name := m.Metadata.Namespace + "/" + m.Metadata.Name
	s.mu.Lock()
	defer s.mu.Unlock()
	target := s.staged[key]
	staging := target != nil
	if !staging {
		target = s.byKey[key]
	}
	if target == nil {
		target = &entry{Key: key, List: true, Items: map[string]json.RawMessage{}}
		s.byKey[key] = target
	}
	if m.Kind != "" && m.Kind != "Status" {
		if ev.Type != "BOOKMARK" || target.Kind == "" {
			target.Kind, target.APIVersion = m.Kind+"List", m.APIVersion
		}
	}
	switch ev.Type {
	case "ADDED", "MODIFIED":
		target.Items[name] = ev.Object
	case "DELETED":
		delete(target.Items, name)
	case "BOOKMARK":
		if staging && m.Metadata.Annotations[initialEventsEnd] == "true" {
			delete(s.staged, key)
			s.byKey[key] = target
			staging = false
		}
	default:
		return // ERROR: nothing to record
	}
	if m.Metadata.ResourceVersion != "" {
		target.ResourceVersion = m.Metadata.ResourceVersion
	}
	target.Seen = s.now()
	if !staging {
		s.dirty[key] = true
	}
}

// List returns the list cached under key as its items (sorted by
// namespace/name), kind, apiVersion and resourceVersion.
func (s *Store) List(key string) (items []json.RawMessage, kind, apiVersion, rv string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.byKey[key]
	if !ok || !e.List {
		return nil, "", "", "", false
	}
	names := make([]string, 0, len(e.Items))
	for n := range e.Items {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		items = append(items, e.Items[n])
	}
	return items, e.Kind, e.APIVersion, e.ResourceVersion, true
}

// Flush writes every changed entry to disk. It returns the first error.
func (s *Store) Flush() error {
	s.mu.Lock()
	var pending []*entry
	for key := range s.dirty {
		if e, ok := s.byKey[key]; ok {
			copied := *e
			if e.Items != nil {
				copied.Items = make(map[string]json.RawMessage, len(e.Items))
				for k, v := range e.Items {
					copied.Items[k] = v
				}
			}
			pending = append(pending, &copied)
		}
	}
	s.dirty = map[string]bool{}
	s.mu.Unlock()
	var errs []error
	for _, e := range pending {
		data, err := json.Marshal(e)
		if err == nil {
			err = atomicfile.Write(s.file(e.Key), data, 0o600)
		}
		if err != nil {
			errs = append(errs, err)
			s.mu.Lock()
			s.dirty[e.Key] = true // try again next time
			s.mu.Unlock()
		}
	}
	return errors.Join(errs...)
}

// Prune forgets every entry not seen since cutoff, in memory and on disk,
// except those a start asked for (see bootWindow): what the node's
// components stopped asking for (the watch of a deleted pod's ConfigMap,
// the pod's token), which would otherwise stay for good. It returns how
// many it removed. Call it only while the servers answer: offline, the
// live entries are not refreshed.
func (s *Store) Prune(cutoff time.Time) (int, error) {
	s.mu.Lock()
	var gone []string
	for key, e := range s.byKey {
		if e.Seen.Before(cutoff) && !s.boot[key] {
			gone = append(gone, key)
		}
	}
	s.forgetLocked(gone)
	s.mu.Unlock()
	return len(gone), s.removeFiles(gone)
}

// Forget removes keys' entries, in memory and on disk: what a server said
// no longer exists (a GET answered 404 Not Found) is not served from the
// cache later.
func (s *Store) Forget(keys ...string) error {
	s.mu.Lock()
	s.forgetLocked(keys)
	s.mu.Unlock()
	return s.removeFiles(keys)
}

func (s *Store) forgetLocked(keys []string) {
	for _, key := range keys {
		delete(s.byKey, key)
		delete(s.dirty, key)
		delete(s.staged, key)
	}
}

func (s *Store) removeFiles(keys []string) error {
	var errs []error
	for _, key := range keys {
		if err := os.Remove(s.file(key)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// withTypeMeta sets kind and apiVersion on a list item (lists leave them
// out; a watch event's object must carry them) and returns its
// namespace/name.
func withTypeMeta(raw json.RawMessage, kind, apiVersion string) (json.RawMessage, string, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, "", err
	}
	var m objectMeta
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, "", err
	}
	k, _ := json.Marshal(kind)
	v, _ := json.Marshal(apiVersion)
	obj["kind"], obj["apiVersion"] = k, v
	out, err := json.Marshal(obj)
	return out, m.Metadata.Namespace + "/" + m.Metadata.Name, err
}

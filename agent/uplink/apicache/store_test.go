package apicache

import (
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// clock is a settable time for the store.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func openAt(t *testing.T, dir string, c *clock) *Store {
	t.Helper()
	s, err := OpenStore(dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	s.now, s.opened = c.now, c.t
	return s
}

func keys(s *Store) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range s.byKey {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func files(t *testing.T, dir string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

func cm(name, rv string) json.RawMessage {
	return json.RawMessage(`{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"` + name + `","namespace":"default","resourceVersion":"` + rv + `"}}`)
}

// TestPruneForgetsWhatNobodyUses: entries no client asked for and no server
// answered for within the window go, from memory and disk; lists kept
// current by their watches stay, and so do the keys a start asked for,
// until a later start no longer asks for them.
func TestPruneForgetsWhatNobodyUses(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: time.Now()}
	s := openAt(t, dir, c)

	c.t = c.t.Add(time.Minute) // the node's components start
	s.Touch("boot")
	s.PutRaw("boot", "application/json", []byte(`{}`))
	s.Touch("live")
	s.Apply("live", event{Type: "ADDED", Object: cm("a", "1")})

	c.t = c.t.Add(time.Hour) // later: a pod comes and goes
	s.Touch("pod-token")
	s.PutRaw("pod-token", "application/json", []byte(`{}`))
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := files(t, dir); n != 3 {
		t.Fatalf("%d cache files, want 3", n)
	}

	c.t = c.t.Add(25 * time.Hour)
	s.Apply("live", event{Type: "BOOKMARK", Object: cm("", "2")}) // the watch goes on
	n, err := s.Prune(c.t.Add(-24 * time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("Prune = %d, %v; want 1 (the pod's token)", n, err)
	}
	if got := keys(s); len(got) != 2 || got[0] != "boot" || got[1] != "live" {
		t.Fatalf("kept %v, want [boot live]", got)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := files(t, dir); n != 2 {
		t.Fatalf("%d cache files after the prune, want 2", n)
	}

	// The agent starts again and asks only for the live list.
	s = openAt(t, dir, c)
	s.Touch("live")
	c.t = c.t.Add(25 * time.Hour)
	s.Apply("live", event{Type: "MODIFIED", Object: cm("a", "3")})
	if n, err := s.Prune(c.t.Add(-24 * time.Hour)); err != nil || n != 1 {
		t.Fatalf("Prune after a restart = %d, %v; want 1 (what the last start read and this one did not)", n, err)
	}
	if items, _, _, rv, ok := s.List("live"); !ok || len(items) != 1 || rv != "3" {
		t.Fatalf("live list after the prune: %d items, rv %q, %v", len(items), rv, ok)
	}
}

// TestEntriesWithoutATimeGetAFullWindow: a cache written before entries
// carried a time is not pruned at once.
func TestEntriesWithoutATimeGetAFullWindow(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: time.Now()}
	s := openAt(t, dir, c)
	data, err := json.Marshal(map[string]any{"key": "old", "body": []byte(`{}`), "contentType": "application/json"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.file("old"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	s = openAt(t, dir, c) // loads it as seen now
	c.t = c.t.Add(23 * time.Hour)
	if n, err := s.Prune(c.t.Add(-24 * time.Hour)); err != nil || n != 0 {
		t.Fatalf("Prune within the window = %d, %v; want 0", n, err)
	}
	c.t = c.t.Add(2 * time.Hour)
	if n, err := s.Prune(c.t.Add(-24 * time.Hour)); err != nil || n != 1 {
		t.Fatalf("Prune after the window = %d, %v; want 1", n, err)
	}
}

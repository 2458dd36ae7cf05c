package apicache

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxCachedBody bounds one cached response; larger ones pass uncached.
const maxCachedBody = 64 << 20

// bufferTee passes a response body through and hands the whole of it to
// done once it was read to the end.
type bufferTee struct {
	body     io.ReadCloser
	buf      bytes.Buffer
	done     func([]byte)
	tooLarge bool
}

func (b *bufferTee) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	if !b.tooLarge {
		b.buf.Write(p[:n])
		b.tooLarge = b.buf.Len() > maxCachedBody
	}
	if err == io.EOF && !b.tooLarge && b.done != nil {
		b.done(b.buf.Bytes())
		b.done = nil
	}
	return n, err
}

func (b *bufferTee) Close() error { return b.body.Close() }

// watchTee passes a watch stream through and applies its events to the
// store as they go by.
type watchTee struct {
	body io.ReadCloser
	pw   *io.PipeWriter
}

func newWatchTee(body io.ReadCloser, s *Store, key string, initialEvents bool) io.ReadCloser {
	pr, pw := io.Pipe()
	if initialEvents {
		s.StartInitialEvents(key)
	}
	go func() {
		dec := json.NewDecoder(pr)
		for {
			var ev event
			if err := dec.Decode(&ev); err != nil {
				io.Copy(io.Discard, pr) // never block the client's stream
				return
			}
			s.Apply(key, ev)
		}
	}()
	return &watchTee{body: body, pw: pw}
}

func (w *watchTee) Read(p []byte) (int, error) {
	n, err := w.body.Read(p)
	if n > 0 {
		w.pw.Write(p[:n])
	}
	if err != nil {
		w.pw.CloseWithError(err)
	}
	return n, err
}

func (w *watchTee) Close() error {
	w.pw.Close()
	return w.body.Close()
}

// holdWatch answers a watch while no server is reachable: a watch-list gets
// the cached items and the bookmark that ends the initial events; then the
// stream stays open, without events, until a server answers again (the
// client then watches again, through to the server), the client goes away
// or its timeout ends.
func (p *Proxy) holdWatch(w http.ResponseWriter, r *http.Request, req request) {
	items, kind, apiVersion, rv, ok := p.store.List(req.key)
	if req.initialEvents && !ok {
		writeStatus(w, http.StatusServiceUnavailable, "kedge: no server is reachable and the local cache has nothing for this watch")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if req.initialEvents {
		enc := json.NewEncoder(w)
		for _, it := range items {
			enc.Encode(event{Type: "ADDED", Object: it})
		}
		mark, _ := json.Marshal(map[string]any{
			"kind": itemKind(kind), "apiVersion": apiVersion,
			"metadata": map[string]any{"resourceVersion": rv, "annotations": map[string]string{initialEventsEnd: "true"}},
		})
		enc.Encode(event{Type: "BOOKMARK", Object: mark})
	}
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	timeout := 30 * time.Minute
	if s, err := strconv.Atoi(r.URL.Query().Get("timeoutSeconds")); err == nil && s > 0 {
		timeout = time.Duration(s) * time.Second
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.backOnline():
	case <-r.Context().Done():
	case <-t.C:
	}
}

func itemKind(listKind string) string {
	if len(listKind) > 4 && listKind[len(listKind)-4:] == "List" {
		return listKind[:len(listKind)-4]
	}
	return listKind
}

// writeList writes a list response with the cached items.
func writeList(w io.Writer, kind, apiVersion, rv string, items []json.RawMessage) {
	if items == nil {
		items = []json.RawMessage{}
	}
	json.NewEncoder(w).Encode(map[string]any{
		"kind": kind, "apiVersion": apiVersion,
		"metadata": map[string]string{"resourceVersion": rv},
		"items":    items,
	})
}

// writeStatus writes a Kubernetes Status error, which clients understand.
func writeStatus(w http.ResponseWriter, code int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":%q,"reason":%q,"code":%d}`+"\n",
		message, strings.ReplaceAll(http.StatusText(code), " ", ""), code)
}

package images

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kedge/kedge/embedded/component"
)

// Importer imports the embedded images and every .tar or .tar.zst in Dir at
// start, and new or changed files every Interval after that.
type Importer struct {
	Socket   string
	Dir      string
	Embedded func() ([]byte, error)
	Interval time.Duration
	Log      *slog.Logger
}

var _ component.Component = (*Importer)(nil)

// Name implements component.Component.
func (i *Importer) Name() string { return "image-import" }

// Run is ready once the embedded images and the files present at start are
// imported. A file that fails to import is logged and retried when it changes.
func (i *Importer) Run(ctx context.Context, ready func()) error {
	embedded, err := i.Embedded()
	if err != nil {
		return err
	}
	names, err := Import(ctx, i.Socket, bytes.NewReader(embedded))
	if err != nil {
		return err
	}
	i.Log.Debug("imported embedded images", "images", names)
	seen := map[string]string{}
	interval := i.Interval
	if interval <= 0 {
		interval = 10 * time.Second
	}
	for {
		i.scan(ctx, seen)
		ready()
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}

func (i *Importer) scan(ctx context.Context, seen map[string]string) {
	entries, err := os.ReadDir(i.Dir)
	if err != nil {
		i.Log.Warn("read images dir", "error", err)
		return
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !(strings.HasSuffix(name, ".tar") || strings.HasSuffix(name, ".tar.zst")) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		stamp := fmt.Sprintf("%d/%d", info.ModTime().UnixNano(), info.Size())
		if seen[name] == stamp {
			continue
		}
		seen[name] = stamp
		imported, err := ImportFile(ctx, i.Socket, filepath.Join(i.Dir, name))
		if err != nil {
			i.Log.Error("image import failed", "file", name, "error", err)
			continue
		}
		i.Log.Info("imported images", "file", name, "images", imported)
	}
}

package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/client-go/rest"
)

// profiler saves the server's pprof profiles (the apiserver serves
// /debug/pprof when started with profiling=true; in kedge that is the whole
// process) into a directory.
type profiler struct {
	hc   *http.Client
	host string
	dir  string
}

func newProfiler(rc *rest.Config, dir string) (*profiler, error) {
	hc, err := rest.HTTPClientFor(rc)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return &profiler{hc: hc, host: strings.TrimSuffix(rc.Host, "/"), dir: dir}, nil
}

// save writes the profile at path (for example "heap" or
// "profile?seconds=60") to file in the directory.
func (p *profiler) save(ctx context.Context, path, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.host+"/debug/pprof/"+path, nil)
	if err != nil {
		return err
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return fmt.Errorf("profile %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile %s: %s (is the apiserver's profiling on?)", path, resp.Status)
	}
	f, err := os.Create(filepath.Join(p.dir, file))
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("profile %s: %w", path, err)
	}
	return f.Close()
}

// Package images imports image tarballs into containerd's CRI namespace, so
// that pods run without any registry.
package images

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	client "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/klauspost/compress/zstd"
)

// Namespace is containerd's namespace for Kubernetes (CRI) images.
const Namespace = "k8s.io"

// Snapshotter is the snapshotter images are unpacked for.
const Snapshotter = "overlayfs"

// pinned is the label containerd's CRI reports as a pinned image, which the
// kubelet's image garbage collection never deletes (containerd's
// internal/cri/labels PinnedImageLabelKey and Value). On a node without a
// registry an imported image that GC deleted could not come back.
var pinned = map[string]string{"io.cri-containerd.pinned": "pinned"}

// Import loads an image tarball (docker-save or OCI layout, optionally
// .zst-compressed) through the containerd socket, pins it (the kubelet's
// image GC leaves it alone) and unpacks it, returning the names it
// imported.
func Import(ctx context.Context, socket string, r io.Reader) ([]string, error) {
	cl, err := client.New(socket, client.WithDefaultNamespace(Namespace))
	if err != nil {
		return nil, fmt.Errorf("connect to containerd: %w", err)
	}
	defer cl.Close()
	ctx = namespaces.WithNamespace(ctx, Namespace)
	imgs, err := cl.Import(ctx, r, client.WithAllPlatforms(false), client.WithImageLabels(pinned))
	if err != nil {
		return nil, fmt.Errorf("import image: %w", err)
	}
	var names []string
	for _, img := range imgs {
		if err := client.NewImage(cl, img).Unpack(ctx, Snapshotter); err != nil {
			return nil, fmt.Errorf("unpack %s: %w", img.Name, err)
		}
		names = append(names, img.Name)
	}
	return names, nil
}

// ImportFile imports one tarball; files ending in .zst are decompressed.
func ImportFile(ctx context.Context, socket, path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".zst") {
		zr, err := zstd.NewReader(f)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		r = zr
	}
	names, err := Import(ctx, socket, r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return names, nil
}

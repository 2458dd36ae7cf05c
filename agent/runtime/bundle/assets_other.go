//go:build !amd64 && !arm64 && !arm

package bundle

import "embed"

// No runtime bundle is built for other architectures: Install and
// PauseImage return ErrMissing.
//
//go:embed assets/README.md
var assets embed.FS

const assetDir = "assets/none"

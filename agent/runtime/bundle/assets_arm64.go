package bundle

import "embed"

//go:embed assets/arm64
var assets embed.FS

const assetDir = "assets/arm64"

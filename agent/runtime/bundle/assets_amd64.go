package bundle

import "embed"

//go:embed assets/amd64
var assets embed.FS

const assetDir = "assets/amd64"

package bundle

import "embed"

//go:embed assets/arm
var assets embed.FS

const assetDir = "assets/arm"

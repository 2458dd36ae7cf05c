// Package version reports the kedge version and the Kubernetes version it embeds.
package version

import (
	"fmt"

	k8sversion "k8s.io/component-base/version"
)

// Version is kedge's version, set at build time with
// -ldflags "-X github.com/kedge/kedge/embedded/version.Version=v0.1.0".
var Version = "v0.0.0-dev"

// String is the one-line version text printed by `kedge --version`.
func String() string {
	return fmt.Sprintf("kedge %s (Kubernetes %s)", Version, k8sversion.Get().GitVersion)
}

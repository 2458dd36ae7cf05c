// Package etcd runs the control-plane integration scenario on embedded etcd,
// in its own test process.
package etcd

import (
	"testing"

	"github.com/kedge/kedge/server/config"
	"github.com/kedge/kedge/server/integration/harness"
)

func TestControlPlaneEmbeddedEtcd(t *testing.T) {
	harness.ExerciseControlPlane(t, func(c *config.Config) { c.ClusterInit = true })
}

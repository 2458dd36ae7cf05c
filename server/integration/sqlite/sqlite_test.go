// Package sqlite runs the control-plane integration scenario on kine/SQLite,
// in its own test process.
package sqlite

import (
	"testing"

	"github.com/kedge/kedge/server/config"
	"github.com/kedge/kedge/server/integration/harness"
)

func TestControlPlaneSQLite(t *testing.T) {
	harness.ExerciseControlPlane(t, func(*config.Config) {})
}

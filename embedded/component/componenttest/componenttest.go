// Package componenttest runs a component.Component in a test.
package componenttest

import (
	"testing"

	"github.com/kedge/kedge/embedded/component"
)

// Start runs c with component.Start until the test ends and returns once c
// is ready; it fails the test if Run returns first. The test's own deadline
// bounds the wait. At cleanup it stops c and fails the test unless Run
// returned nil.
func Start(t testing.TB, c component.Component) {
	t.Helper()
	b, err := component.Start(t.Context(), c)
	if err != nil {
		t.Fatalf("start %s: %v", c.Name(), err)
	}
	t.Cleanup(func() {
		if err := b.Stop(); err != nil {
			t.Errorf("%s: Run after stop = %v, want nil", c.Name(), err)
		}
	})
}

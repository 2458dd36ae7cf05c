package config

import (
	"strings"
	"testing"
)

func TestEmbeddedEtcdSupported(t *testing.T) {
	for _, tc := range []struct {
		goarch string
		ok     bool
	}{{"amd64", true}, {"arm64", true}, {"arm", false}, {"386", false}} {
		err := embeddedEtcdSupported(tc.goarch)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok=%v", tc.goarch, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "SQLite") {
			t.Errorf("%s: %v does not name the alternative", tc.goarch, err)
		}
	}
}

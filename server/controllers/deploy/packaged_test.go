package deploy

import (
	"slices"
	"testing"

	"github.com/kedge/kedge/manifests"
	"github.com/kedge/kedge/server/config"
)

// TestPackagedManifests: every packaged manifest is named for an add-on
// that --disable accepts, templates with the known variables and parses.
func TestPackagedManifests(t *testing.T) {
	files, err := manifests.Files()
	if err != nil {
		t.Fatal(err)
	}
	vars := Variables{ClusterDNS: config.DefaultClusterDNS, ClusterDomain: config.DefaultClusterDomain, ServerCA: []byte("ca")}
	for name, data := range files {
		if !slices.Contains(config.Addons, AddonName(name)) {
			t.Errorf("%s: %q is not in config.Addons %v, so --disable cannot name it", name, AddonName(name), config.Addons)
		}
		out, err := vars.Substitute(data)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		objs, err := Parse(out)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if len(objs) == 0 {
			t.Errorf("%s: no objects", name)
		}
	}
}

package main

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// The layers of the tree (DESIGN.md): main.go → server → agent → shared →
// embedded. A package may import its own layer and the layers below it;
// server/integration and scripts are test harnesses that may import
// anything; tests may use them, product code may not.
var layers = []string{"server", "agent", "shared", "embedded", "manifests"}

// testOnlyCrossings are test files that run a piece against the real
// counterpart one layer up, with the reason. Product code never crosses.
var testOnlyCrossings = map[string]string{
	"agent/uplink/apicache -> server/integration/harness": "the cache is tested against a real apiserver",
	"agent/join -> server/pki":                            "joining is tested with certificates of the server's real PKI",
	"agent/uplink/tunnel -> server/pki":                   "the client is tested against the real tunnel server",
	"agent/uplink/tunnel -> server/tunnel":                "the client is tested against the real tunnel server",
	"embedded/containerd -> agent/runtime/bundle":         "containerd is tested with the runc and shim of the bundle",
	"embedded/containerd -> agent/runtime/containerd":     "containerd is tested with the agent's configuration",
	"embedded/containerd -> agent/runtime/images":         "containerd is tested with an image imported the agent's way",
}

type goPackage struct {
	ImportPath                         string
	Imports, TestImports, XTestImports []string
}

const module = "github.com/kedge/kedge"

// layerOf is the index in layers of a package path relative to the module
// ("" is main), -1 for the module root, and len(layers) for harnesses.
func layerOf(rel string) int {
	if rel == "" {
		return -1
	}
	if strings.HasPrefix(rel, "server/integration") || strings.HasPrefix(rel, "scripts") {
		return len(layers)
	}
	top, _, _ := strings.Cut(rel, "/")
	for i, l := range layers {
		if l == top {
			return i
		}
	}
	return len(layers)
}

// crossing reports why from may not import to ("" when it may).
func crossing(from, to string) string {
	f, t := layerOf(from), layerOf(to)
	switch {
	case t == len(layers) && f != len(layers):
		return "product code imports a test harness"
	case f == len(layers) || f == -1:
		return ""
	case t < f:
		return layers[f] + " is below " + layers[t]
	}
	return ""
}

func TestLayersPointDown(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := 0
	for {
		var p goPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		seen++
		from := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		check := func(imports []string, test bool) {
			for _, imp := range imports {
				to, ok := strings.CutPrefix(imp, module+"/")
				if !ok {
					continue
				}
				why := crossing(from, to)
				if why == "" || test && layerOf(to) == len(layers) {
					continue
				}
				if _, allowed := testOnlyCrossings[from+" -> "+to]; allowed && test {
					continue
				}
				t.Errorf("%s imports %s: %s", from, to, why)
			}
		}
		check(p.Imports, false)
		check(p.TestImports, true)
		check(p.XTestImports, true)
	}
	if seen < 50 {
		t.Fatalf("go list returned %d packages; the check saw too little of the tree", seen)
	}
}

func TestLayerRules(t *testing.T) {
	for _, c := range []struct {
		from, to string
		ok       bool
	}{
		{"agent/join", "server/pki", false},
		{"embedded/flannel", "shared/atomicfile", false},
		{"shared/token", "agent/config", false},
		{"agent/join", "shared/token", true},
		{"server", "agent", true},
		{"server/controllers/rbac", "embedded/component", true},
		{"agent/uplink/lb", "scripts/testenv", false},
		{"server/integration/harness", "scripts/testenv", true},
		{"", "server/command", true},
	} {
		if got := crossing(c.from, c.to) == ""; got != c.ok {
			t.Errorf("%s -> %s allowed = %v, want %v", c.from, c.to, got, c.ok)
		}
	}
}

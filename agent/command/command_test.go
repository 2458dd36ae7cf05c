package command

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/kedge/kedge/agent/config"
)

// parse runs the agent command's flag handling (without starting an agent)
// and returns the resulting node options and server.
func parse(t *testing.T, args ...string) (config.NodeOptions, string, error) {
	t.Helper()
	cmd := New(nil)
	var opts config.NodeOptions
	var server string
	cmd.Action = func(c *cli.Context) error { opts, server = NodeOptions(c), c.String("server"); return nil }
	app := &cli.App{Name: "kedge", DisableSliceFlagSeparator: true, Commands: []*cli.Command{cmd}}
	err := app.Run(append([]string{"kedge", "agent"}, args...))
	return opts, server, err
}

func TestAgentConfigFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(file, []byte("server: https://192.0.2.1:6443\nnode-label: [zone=a, rack=1]\nnode-name: from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, server, err := parse(t, "--config", file, "--node-name", "from-flag")
	if err != nil {
		t.Fatal(err)
	}
	if server != "https://192.0.2.1:6443" || !slices.Equal(opts.NodeLabels, []string{"zone=a", "rack=1"}) {
		t.Errorf("server %q labels %v: the file's values were not applied", server, opts.NodeLabels)
	}
	if opts.NodeName != "from-flag" {
		t.Errorf("node-name = %q, want the flag's over the file's", opts.NodeName)
	}

	if err := os.WriteFile(file, []byte("cluster-cidr: 10.0.0.0/8\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := parse(t, "--config", file); err == nil || !strings.Contains(err.Error(), `unknown key "cluster-cidr"`) {
		t.Errorf("a server-only key in the agent's file: err = %v", err)
	}
	if _, _, err := parse(t, "--config", filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("a missing --config file was accepted")
	}
}

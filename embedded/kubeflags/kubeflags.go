// Package kubeflags parses argument lists into the named flag sets of the
// upstream Kubernetes components, without their cobra commands (which
// install process-wide signal handlers and exit on their own).
package kubeflags

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/pflag"
	cliflag "k8s.io/component-base/cli/flag"
)

// Parse applies args ("--key=value") to the flags in sets.
func Parse(component string, sets cliflag.NamedFlagSets, args []string) error {
	fs := pflag.NewFlagSet(component, pflag.ContinueOnError)
	fs.SetOutput(discard{})
	for _, name := range sets.Order {
		fs.AddFlagSet(sets.FlagSets[name])
	}
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%s arguments: %w", component, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s arguments: unexpected %q", component, fs.Args())
	}
	return nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// Render merges overrides ("key=value", leading dashes optional) over
// defaults and returns sorted --key=value arguments. Callers use it for every
// upstream component, so user pass-through args behave the same everywhere.
func Render(defaults map[string]string, overrides []string) []string {
	merged := make(map[string]string, len(defaults)+len(overrides))
	for k, v := range defaults {
		merged[k] = v
	}
	for _, o := range overrides {
		k, v, _ := strings.Cut(strings.TrimLeft(o, "-"), "=")
		merged[k] = v
	}
	out := make([]string, 0, len(merged))
	for k, v := range merged {
		out = append(out, "--"+k+"="+v)
	}
	sort.Strings(out)
	return out
}

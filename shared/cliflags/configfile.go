package cliflags

import (
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/urfave/cli/v2"
	"sigs.k8s.io/yaml"
)

// ApplyConfigFile sets, from the YAML file at path, every flag the user did
// not set on the command line or in the environment. Keys are flag names;
// values are scalars or lists (for repeatable flags). A missing file is an
// error only when required.
func ApplyConfigFile(c *cli.Context, path string, required bool) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !required {
		return nil
	}
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(data, &values); err != nil {
		return fmt.Errorf("config file %s is not valid YAML: %w", path, err)
	}
	known := map[string]bool{}
	for _, f := range c.Command.Flags {
		for _, n := range f.Names() {
			known[n] = true
		}
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		if !known[key] || key == "config" {
			return fmt.Errorf("config file %s: unknown key %q (keys are flag names, like data-dir)", path, key)
		}
		if c.IsSet(key) {
			continue
		}
		var items []any
		switch v := values[key].(type) {
		case []any:
			items = v
		case map[string]any:
			return fmt.Errorf("config file %s: key %q must be a value or a list, not a map", path, key)
		default:
			items = []any{v}
		}
		for _, item := range items {
			if _, isMap := item.(map[string]any); isMap {
				return fmt.Errorf("config file %s: key %q has a map in its list", path, key)
			}
			if err := c.Set(key, fmt.Sprint(item)); err != nil {
				return fmt.Errorf("config file %s: key %q: %w", path, key, err)
			}
		}
	}
	return nil
}

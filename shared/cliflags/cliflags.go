// Package cliflags defines, once, the command-line flags that `kedge
// server` and `kedge agent` both take (name, alias, KEDGE_* variable,
// default), and the YAML config file whose keys are flag names.
package cliflags

import (
	"fmt"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/kedge/kedge/shared/datadir"
)

// DefaultConfigFile is read when --config is not given, if it exists.
const DefaultConfigFile = "/etc/kedge/config.yaml"

// Env is the variable of a flag: KEDGE_<name>.
func Env(name string) []string { return []string{"KEDGE_" + name} }

// Config is --config: the YAML file ApplyConfigFile reads.
func Config() cli.Flag {
	return &cli.StringFlag{Name: "config", Aliases: []string{"c"}, EnvVars: Env("CONFIG_FILE"), Value: DefaultConfigFile,
		Usage: "YAML file whose keys are flag names"}
}

// Debug is --debug.
func Debug() cli.Flag {
	return &cli.BoolFlag{Name: "debug", EnvVars: Env("DEBUG"), Usage: "Log at debug level"}
}

// DataDir is --data-dir; usage says what it holds for the command.
func DataDir(usage string) cli.Flag {
	return &cli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, EnvVars: Env("DATA_DIR"), Value: datadir.Default, Usage: usage}
}

// Server is --server, the URL of a server to join; usage says what joining
// means for the command.
func Server(usage string) cli.Flag {
	return &cli.StringFlag{Name: "server", Aliases: []string{"s"}, EnvVars: Env("URL"), Usage: usage}
}

// Token is --token; usage says which token the command takes.
func Token(usage string) cli.Flag {
	return &cli.StringFlag{Name: "token", Aliases: []string{"t"}, EnvVars: Env("TOKEN"), Usage: usage}
}

// ApplyConfigFileBefore is a cli.BeforeFunc that applies the file named by
// --config (see ApplyConfigFile); the file must exist only when --config
// was set.
func ApplyConfigFileBefore(c *cli.Context) error {
	return ApplyConfigFile(c, c.String("config"), c.IsSet("config"))
}

// Output is --output/-o, one of formats, the first being the default. A
// value that is not one of them is a usage error of the command.
func Output(formats ...string) cli.Flag {
	return &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: formats[0], Usage: strings.Join(formats, " or "),
		Action: func(c *cli.Context, v string) error {
			if slices.Contains(formats, v) {
				return nil
			}
			err := fmt.Errorf("--output %q is not %s", v, strings.Join(formats, " or "))
			if c.Command != nil && c.Command.OnUsageError != nil {
				return c.Command.OnUsageError(c, err, false)
			}
			return err
		}}
}

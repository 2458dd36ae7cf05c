package command

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/kedge/kedge/agent/checkconfig"
	"github.com/kedge/kedge/shared/cliflags"
	"github.com/kedge/kedge/shared/datadir"
)

// CheckConfig returns the `check-config` command: it prints what kedge
// needs from this machine and whether it is there, and fails (exit 1)
// when a required item is missing.
func CheckConfig() *cli.Command {
	return &cli.Command{
		Name:  "check-config",
		Usage: "Check that this machine has what kedge needs (kernel features, cgroups, commands, route, ports, storage, privileges)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, EnvVars: []string{"KEDGE_DATA_DIR"}, Value: datadir.Default, Usage: "Directory for all state, whose file system is checked"},
			cliflags.Output("text", "json"),
		},
		Action: func(c *cli.Context) error {
			write := checkconfig.WriteText
			if c.String("output") == "json" {
				write = checkconfig.WriteJSON
			}
			rep := checkconfig.Check(checkconfig.Host(c.String("data-dir")))
			if err := write(os.Stdout, rep); err != nil {
				return err
			}
			switch n := rep.Count(checkconfig.Missing); n {
			case 0:
				return nil
			case 1:
				return fmt.Errorf("check-config: a required item is missing")
			default:
				return fmt.Errorf("check-config: %d required items are missing", n)
			}
		},
	}
}

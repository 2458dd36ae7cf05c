package certificate

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kedge/kedge/shared/cliflags"
	"github.com/kedge/kedge/shared/datadir"
)

// Command is `kedge certificate`, with `check` and `rotate`.
func Command() *cli.Command {
	return &cli.Command{
		Name:  "certificate",
		Usage: "Inspect and renew the certificates in the data dir",
		Subcommands: []*cli.Command{{
			Name:  "check",
			Usage: "List every certificate of this server and its node with its expiry and days left",
			Flags: []cli.Flag{
				cliflags.DataDir("Directory for all state, whose certificates are listed"),
				cliflags.Output("table", "json"),
			},
			Action: func(c *cli.Context) error {
				return check(c.App.Writer, c.String("data-dir"), c.String("output"), time.Now())
			},
		}, {
			Name:  "rotate",
			Usage: "Re-issue certificates now, with the same keys (the server may be running; CAs are never rotated)",
			Flags: []cli.Flag{
				cliflags.DataDir("Directory for all state, whose certificates are re-issued"),
				&cli.StringSliceFlag{Name: "service", Usage: "Only these (repeatable): " + strings.Join(ServiceNames(), ", ")},
			},
			Action: func(c *cli.Context) error {
				if c.NArg() > 0 {
					return fmt.Errorf("unexpected argument %q; name services with --service", c.Args().First())
				}
				return rotate(c.App.Writer, c.String("data-dir"), c.StringSlice("service"), time.Now())
			},
		}},
	}
}

func check(w io.Writer, dataDir, output string, now time.Time) error {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	infos, err := Scan(now, datadir.NewServer(abs).TLSDir, datadir.NewAgent(abs, datadir.DefaultRunDir).CredDir)
	if err != nil {
		return err
	}
	if len(infos) == 0 {
		return fmt.Errorf("no certificates under --data-dir %s (server/tls or agent/cred)", abs)
	}
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(infos)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FILE\tSUBJECT\tEXPIRES\tDAYS LEFT\tSTATUS")
	for _, i := range infos {
		status := "ok"
		switch {
		case i.Expired(now):
			status = "EXPIRED"
		case i.CA:
			status = "ok (CA)"
		case !now.Before(i.RenewAt):
			status = "renewal due"
		}
		rel, err := filepath.Rel(abs, i.File)
		if err != nil {
			rel = i.File
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", rel, i.Subject, i.NotAfter.Format(time.DateOnly), i.DaysLeft, status)
	}
	return tw.Flush()
}

package snapshot

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kedge/kedge/shared/cliflags"
	"github.com/kedge/kedge/shared/datadir"
)

// DefaultName prefixes snapshots taken on demand.
const DefaultName = "on-demand"

// Command is `kedge snapshot` with save, ls, delete and prune.
func Command() *cli.Command {
	dirFlag := &cli.StringFlag{Name: "dir", EnvVars: cliflags.Env("SNAPSHOT_DIR"), Usage: "Directory of the snapshots (default: <data-dir>/server/db/snapshots)"}
	flags := func(extra ...cli.Flag) []cli.Flag {
		return append([]cli.Flag{cliflags.DataDir("The server's data dir"), dirFlag}, extra...)
	}
	return &cli.Command{
		Name:  "snapshot",
		Usage: "Save, list and prune backups of the server's SQLite or embedded etcd datastore (with its CAs, keys and tokens)",
		Subcommands: []*cli.Command{
			{
				Name:  "save",
				Usage: "Save a consistent copy now (the server may be running)",
				Flags: flags(&cli.StringFlag{Name: "name", Value: DefaultName, Usage: "Prefix of the file name: NAME-NODE-UNIXTIME.tar.gz"},
					&cli.StringFlag{Name: "node-name", EnvVars: cliflags.Env("NODE_NAME"), Usage: "Node name in the file name (default: hostname)"},
					&cli.IntFlag{Name: "etcd-client-port", EnvVars: cliflags.Env("ETCD_CLIENT_PORT"), Value: 2379, Usage: "Client port of the server's embedded etcd (on 127.0.0.1)"}),
				Action: func(c *cli.Context) error {
					dataDir, dir, err := dirs(c)
					if err != nil {
						return err
					}
					node := c.String("node-name")
					if node == "" {
						host, err := os.Hostname()
						if err != nil {
							return fmt.Errorf("detect node name: %w; set --node-name", err)
						}
						node = strings.ToLower(host)
					}
					path, err := Save(c.Context, Request{DataDir: dataDir, Dir: dir, Name: c.String("name"), Node: node, Now: time.Now(),
						EtcdEndpoint: EtcdEndpoint(c.Int("etcd-client-port"))})
					if err != nil {
						return err
					}
					fmt.Fprintln(c.App.Writer, path)
					return nil
				},
			},
			{
				Name:    "ls",
				Aliases: []string{"list"},
				Usage:   "List the snapshots, oldest first",
				Flags:   flags(cliflags.Output("table", "json")),
				Action: func(c *cli.Context) error {
					_, dir, err := dirs(c)
					if err != nil {
						return err
					}
					out := c.String("output")
					files, err := List(dir)
					if err != nil {
						return err
					}
					if out == "json" {
						enc := json.NewEncoder(c.App.Writer)
						enc.SetIndent("", "  ")
						return enc.Encode(files)
					}
					tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "NAME\tSIZE\tCREATED")
					for _, f := range files {
						fmt.Fprintf(tw, "%s\t%d\t%s\n", f.Name, f.Size, f.ModTime.UTC().Format(time.RFC3339))
					}
					return tw.Flush()
				},
			},
			{
				Name:      "delete",
				Usage:     "Delete snapshots by name",
				ArgsUsage: "NAME...",
				Flags:     flags(),
				Action: func(c *cli.Context) error {
					_, dir, err := dirs(c)
					if err != nil {
						return err
					}
					if c.NArg() == 0 {
						return fmt.Errorf("name the snapshots to delete (see kedge snapshot ls)")
					}
					return Delete(dir, c.Args().Slice()...)
				},
			},
			{
				Name:  "prune",
				Usage: "Delete the oldest snapshots of a name, keeping the newest --retention",
				Flags: flags(&cli.StringFlag{Name: "name", Value: DefaultName, Usage: "Prefix of the snapshots to prune"},
					&cli.IntFlag{Name: "retention", Value: 5, Usage: "How many to keep"}),
				Action: func(c *cli.Context) error {
					_, dir, err := dirs(c)
					if err != nil {
						return err
					}
					removed, err := Prune(dir, c.String("name"), c.Int("retention"))
					for _, n := range removed {
						fmt.Fprintln(c.App.Writer, "deleted", n)
					}
					return err
				},
			},
		},
	}
}

// dirs returns the absolute data dir and snapshot dir of c's flags.
func dirs(c *cli.Context) (dataDir, dir string, err error) {
	if dataDir, err = filepath.Abs(c.String("data-dir")); err != nil {
		return "", "", fmt.Errorf("--data-dir: %w", err)
	}
	dir = c.String("dir")
	if dir == "" {
		dir = datadir.NewServer(dataDir).SnapshotsDir
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return "", "", fmt.Errorf("--dir: %w", err)
	}
	return dataDir, dir, nil
}

// EtcdEndpoint is the local client URL of an embedded etcd on port.
func EtcdEndpoint(port int) string {
	return "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

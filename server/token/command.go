// Package token is `kedge token`: bootstrap tokens with a lifetime
// (create, list, delete; see server/token/bootstrap) and the rotation of
// the server token (rotate; see server/token/servertoken).
package token

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kedge/kedge/server/adminclient"
	"github.com/kedge/kedge/server/token/bootstrap"
	"github.com/kedge/kedge/server/token/servertoken"
	"github.com/kedge/kedge/shared/cliflags"
	"github.com/kedge/kedge/shared/datadir"
	sharedtoken "github.com/kedge/kedge/shared/token"
)

// Command is `kedge token` with create, list, delete and rotate. They use
// the API through $KUBECONFIG, else the admin kubeconfig.
func Command() *cli.Command {
	dataDir := cliflags.DataDir("The server's data dir (its CA pins the printed token; rotate writes its token file)")
	return &cli.Command{
		Name:  "token",
		Usage: "Make, list and delete bootstrap tokens (agents join with them until they expire); rotate the server token",
		Subcommands: []*cli.Command{
			{
				Name:  "create",
				Usage: "Create a bootstrap token and print it (K10<CA hash>::<id>.<secret>)",
				Flags: []cli.Flag{dataDir,
					&cli.DurationFlag{Name: "ttl", Value: 24 * time.Hour, Usage: "Lifetime; 0 means it never expires"},
					&cli.StringFlag{Name: "description", Usage: "What the token is for (shown by list)"},
					&cli.StringSliceFlag{Name: "groups", Usage: "Extra groups, system:bootstrappers:..., repeated or comma-separated"},
				},
				Action: create,
			},
			{
				Name:    "list",
				Aliases: []string{"ls"},
				Usage:   "List the bootstrap tokens (never their secrets)",
				Flags:   []cli.Flag{dataDir, cliflags.Output("text", "json")},
				Action:  list,
			},
			{
				Name:      "delete",
				Usage:     "Delete bootstrap tokens by id (nodes that joined with them keep working)",
				ArgsUsage: "ID...",
				Flags:     []cli.Flag{dataDir},
				Action:    remove,
			},
			{
				Name:  "rotate",
				Usage: "Replace the server token on every server (the server must be running; joined nodes keep working)",
				Flags: []cli.Flag{dataDir,
					&cli.StringFlag{Name: "new-token", Usage: "The new server token: a secret of at least 16 characters, or K10<CA hash>::server:<secret>"},
				},
				Action: rotate,
			},
		},
	}
}

// usage marks err as bad input: main maps it to exit code 2.
func usage(c *cli.Context, err error) error {
	if c.Command != nil && c.Command.OnUsageError != nil {
		return c.Command.OnUsageError(c, err, true)
	}
	return err
}

func client() (kubernetes.Interface, *rest.Config, error) {
	rc, err := adminclient.Config()
	if err != nil {
		return nil, nil, err
	}
	cs, err := kubernetes.NewForConfig(rc)
	return cs, rc, err
}

func serverDir(c *cli.Context) (datadir.Server, error) {
	abs, err := filepath.Abs(c.String("data-dir"))
	if err != nil {
		return datadir.Server{}, fmt.Errorf("--data-dir: %w", err)
	}
	return datadir.NewServer(abs), nil
}

// caBundle is the server CA of the data dir, else the kubeconfig's.
func caBundle(dir datadir.Server, rc *rest.Config) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(dir.TLSDir, "server-ca.crt"))
	if err == nil {
		return b, nil
	}
	if len(rc.CAData) > 0 {
		return rc.CAData, nil
	}
	if rc.CAFile != "" {
		return os.ReadFile(rc.CAFile)
	}
	return nil, fmt.Errorf("no server CA to pin: %w (set --data-dir to the server's)", err)
}

func create(c *cli.Context) error {
	if c.NArg() > 0 {
		return usage(c, fmt.Errorf("create takes no arguments (got %q)", c.Args().First()))
	}
	spec := bootstrap.Spec{TTL: c.Duration("ttl"), Description: c.String("description")}
	for _, g := range c.StringSlice("groups") {
		for _, g := range strings.Split(g, ",") {
			if g = strings.TrimSpace(g); g != "" {
				spec.Groups = append(spec.Groups, g)
			}
		}
	}
	if err := spec.Validate(); err != nil {
		return usage(c, err)
	}
	dir, err := serverDir(c)
	if err != nil {
		return usage(c, err)
	}
	cs, rc, err := client()
	if err != nil {
		return err
	}
	ca, err := caBundle(dir, rc)
	if err != nil {
		return err
	}
	tok, err := bootstrap.Create(c.Context, cs, spec, time.Now())
	if err != nil {
		return err
	}
	// Printing it is this command's purpose.
	fmt.Fprintln(c.App.Writer, sharedtoken.Token{CAHash: sharedtoken.CAHash(ca), Username: sharedtoken.BootstrapUser, Secret: tok}.String())
	return nil
}

func list(c *cli.Context) error {
	out := c.String("output")
	if c.NArg() > 0 {
		return usage(c, fmt.Errorf("list takes no arguments (got %q)", c.Args().First()))
	}
	cs, _, err := client()
	if err != nil {
		return err
	}
	now := time.Now()
	infos, err := bootstrap.List(c.Context, cs, now)
	if err != nil {
		return err
	}
	if out == "json" {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(infos)
	}
	return writeTable(c.App.Writer, infos, now)
}

func writeTable(w io.Writer, infos []bootstrap.Info, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTTL\tEXPIRES\tUSAGES\tDESCRIPTION\tEXTRA GROUPS")
	for _, i := range infos {
		ttl, expires := "<forever>", "<never>"
		if i.Expires != nil {
			expires = i.Expires.UTC().Format(time.RFC3339)
			ttl = "<expired>"
			if left := i.Expires.Sub(now); left > 0 && !i.Expired {
				ttl = left.Round(time.Second).String()
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", i.ID, ttl, expires, dash(strings.Join(i.Usages, ",")), dash(i.Description), dash(strings.Join(i.Groups, ",")))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func remove(c *cli.Context) error {
	ids := c.Args().Slice()
	if len(ids) == 0 {
		return usage(c, errors.New("name the tokens to delete by id (see kedge token list)"))
	}
	for _, id := range ids {
		if err := bootstrap.ValidateID(id); err != nil {
			return usage(c, err)
		}
	}
	cs, _, err := client()
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := bootstrap.Delete(c.Context, cs, id); err != nil {
			return err
		}
		fmt.Fprintln(c.App.Writer, "deleted", id)
	}
	return nil
}

func rotate(c *cli.Context) error {
	if c.NArg() > 0 {
		return usage(c, fmt.Errorf("rotate takes no arguments (got %q); give the token with --new-token", c.Args().First()))
	}
	if !c.IsSet("new-token") {
		return usage(c, errors.New("--new-token is required"))
	}
	next, err := sharedtoken.Parse(c.String("new-token"))
	if err != nil {
		return usage(c, fmt.Errorf("--new-token: %w", err))
	}
	if next.IsBootstrap() {
		return usage(c, errors.New("--new-token is a bootstrap token, which joins agents only; the server token is a secret of at least 16 characters"))
	}
	dir, err := serverDir(c)
	if err != nil {
		return usage(c, err)
	}
	ca, err := os.ReadFile(filepath.Join(dir.TLSDir, "server-ca.crt"))
	if err != nil {
		return fmt.Errorf("read the server CA (rotate runs on a server; set --data-dir): %w", err)
	}
	cs, _, err := client()
	if err != nil {
		return err
	}
	if err := servertoken.Rotate(c.Context, cs, dir.TokenFile, ca, next); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "rotated the server token: it is in force on every server now; its full form (K10...) is in %s.\n", dir.TokenFile)
	fmt.Fprintln(c.App.Writer, "Nodes that joined keep working. Use the new token to join new servers and agents, and put it in any --token of servers' and agents' config files.")
	return nil
}

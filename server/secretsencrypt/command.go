package secretsencrypt

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"
	"k8s.io/client-go/kubernetes"

	"github.com/kedge/kedge/server/adminclient"
	"github.com/kedge/kedge/server/config"
	"github.com/kedge/kedge/shared/cliflags"
	"github.com/kedge/kedge/shared/datadir"
)

// Command is `kedge secrets-encrypt` with status and rotate-keys.
func Command() *cli.Command {
	dataDir := cliflags.DataDir("The server's data dir")
	return &cli.Command{
		Name:  "secrets-encrypt",
		Usage: "Show and rotate the keys that encrypt Secrets at rest (kedge server --secrets-encryption)",
		Subcommands: []*cli.Command{
			{
				Name:  "status",
				Usage: "Whether Secrets are encrypted, the keys, and whether the running apiserver applied the current config ($KUBECONFIG or " + config.DefaultKubeconfig + ")",
				Flags: []cli.Flag{dataDir, cliflags.Output("text", "json")},
				Action: func(c *cli.Context) error {
					out := c.String("output")
					client, err := Client()
					if err != nil {
						client = nil // the status of the file alone, and why the API was not asked
					}
					st, err2 := Read(c.Context, datadir.NewServer(c.String("data-dir")).EncryptionConfig, client)
					if err2 != nil {
						return err2
					}
					if err != nil {
						st.APIServer.Error = err.Error()
					}
					if out == "json" {
						enc := json.NewEncoder(c.App.Writer)
						enc.SetIndent("", "  ")
						return enc.Encode(st)
					}
					return st.WriteText(c.App.Writer)
				},
			},
			{
				Name: "rotate-keys",
				Usage: "With the server running: add a new key, re-encrypt every Secret with it, drop the old key " +
					"(uses $KUBECONFIG or " + config.DefaultKubeconfig + "; run it again to finish an interrupted rotation)",
				Flags: []cli.Flag{dataDir},
				Action: func(c *cli.Context) error {
					path := datadir.NewServer(c.String("data-dir")).EncryptionConfig
					if err := configured(path); err != nil {
						return err
					}
					client, err := Client()
					if err != nil {
						return fmt.Errorf("rotate-keys needs the running server's API: %w", err)
					}
					r := &Rotation{Path: path, Client: client, Out: c.App.Writer, Now: time.Now}
					return r.Run(c.Context)
				},
			},
		},
	}
}

// Client is a cluster-admin client (adminclient).
func Client() (kubernetes.Interface, error) {
	cfg, err := adminclient.Config()
	if err != nil {
		return nil, err
	}
	// rotate-keys sends one update after another (one worker, so it
	// never floods a small device); client-go's default of 5 per second
	// made 1,000 Secrets take 7 minutes.
	cfg.QPS, cfg.Burst = 200, 200
	return kubernetes.NewForConfig(cfg)
}

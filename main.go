// Command kedge is a lightweight Kubernetes distribution for edge and IoT
// devices, in one binary. This file is the CLI only: it builds the app,
// dispatches multi-call names (kubectl), and maps errors to exit codes.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	agentcommand "github.com/kedge/kedge/agent/command"
	"github.com/kedge/kedge/agent/runtime/crictl"
	"github.com/kedge/kedge/embedded/ctr"
	"github.com/kedge/kedge/embedded/kubectl"
	"github.com/kedge/kedge/embedded/logging"
	"github.com/kedge/kedge/embedded/version"
	"github.com/kedge/kedge/server/certificate"
	"github.com/kedge/kedge/server/command"
	"github.com/kedge/kedge/server/config"
	"github.com/kedge/kedge/server/secretsencrypt"
	"github.com/kedge/kedge/server/snapshot"
	"github.com/kedge/kedge/server/token"
)

// shutdownGrace is how long a stop signal may take before kedge exits anyway.
const shutdownGrace = 15 * time.Second

// usageError marks bad command-line input (exit code 2).
type usageError struct{ error }

func main() {
	if filepath.Base(os.Args[0]) == "kubectl" {
		os.Exit(kubectl.Main(os.Args[1:], config.DefaultKubeconfig))
	}
	if len(os.Args) > 1 && os.Args[1] == "kubectl" {
		os.Exit(kubectl.Main(os.Args[2:], config.DefaultKubeconfig))
	}
	if filepath.Base(os.Args[0]) == "crictl" {
		os.Exit(crictl.Main(os.Args[1:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "crictl" {
		os.Exit(crictl.Main(os.Args[2:]))
	}
	if filepath.Base(os.Args[0]) == "ctr" {
		os.Exit(ctr.Main(os.Args[1:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "ctr" {
		os.Exit(ctr.Main(os.Args[2:]))
	}
	os.Exit(run(os.Args))
}

func run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal now kills the process at once
		time.Sleep(shutdownGrace)
		fmt.Fprintf(os.Stderr, "kedge: shutdown took longer than %s; exiting\n", shutdownGrace)
		os.Exit(1)
	}()

	err := newApp().RunContext(ctx, args)
	if err == nil {
		return 0
	}
	fmt.Fprintf(os.Stderr, "kedge: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

func newApp() *cli.App {
	cli.VersionPrinter = func(*cli.Context) { fmt.Println(version.String()) }
	onUsageError := func(_ *cli.Context, err error, _ bool) error { return usageError{err} }
	logger := func(debug bool) *slog.Logger { return logging.Setup(os.Stderr, debug) }

	serverCmd := command.New(logger)
	serverCmd.OnUsageError = onUsageError
	agentCmd := agentcommand.New(logger)
	agentCmd.OnUsageError = onUsageError
	checkConfigCmd := agentcommand.CheckConfig()
	checkConfigCmd.OnUsageError = onUsageError
	certificateCmd, snapshotCmd := certificate.Command(), snapshot.Command()
	for _, sub := range append(certificateCmd.Subcommands, snapshotCmd.Subcommands...) {
		sub.OnUsageError = onUsageError
	}
	tokenCmd, secretsEncryptCmd := token.Command(), secretsencrypt.Command()
	for _, sub := range append(tokenCmd.Subcommands, secretsEncryptCmd.Subcommands...) {
		sub.OnUsageError = onUsageError
	}
	return &cli.App{
		Name:                      "kedge",
		Usage:                     "Lightweight Kubernetes for edge and IoT devices",
		Version:                   version.Version,
		DisableSliceFlagSeparator: true,
		HideHelpCommand:           true,
		OnUsageError:              onUsageError,
		CommandNotFound: func(c *cli.Context, name string) {
			fmt.Fprintf(os.Stderr, "kedge: unknown command %q; see kedge --help\n", name)
			os.Exit(2)
		},
		Commands: []*cli.Command{
			serverCmd,
			agentCmd,
			checkConfigCmd,
			certificateCmd,
			snapshotCmd,
			tokenCmd,
			secretsEncryptCmd,
			{
				Name:            "crictl",
				Usage:           "Run crictl against this node's containerd ($CONTAINER_RUNTIME_ENDPOINT overrides)",
				SkipFlagParsing: true,
				// Dispatched in main before the app runs; listed here for --help.
				Action: func(c *cli.Context) error {
					os.Exit(crictl.Main(c.Args().Slice()))
					return nil
				},
			},
			{
				Name:            "ctr",
				Usage:           "Run containerd's ctr against this node's containerd (namespace k8s.io; $CONTAINERD_ADDRESS overrides)",
				SkipFlagParsing: true,
				// Dispatched in main before the app runs; listed here for --help.
				Action: func(c *cli.Context) error {
					os.Exit(ctr.Main(c.Args().Slice()))
					return nil
				},
			},
			{
				Name:            "kubectl",
				Usage:           "Run kubectl against this cluster (uses $KUBECONFIG or " + config.DefaultKubeconfig + ")",
				SkipFlagParsing: true,
				// Dispatched in main before the app runs; listed here for --help.
				Action: func(c *cli.Context) error {
					os.Exit(kubectl.Main(c.Args().Slice(), config.DefaultKubeconfig))
					return nil
				},
			},
		},
	}
}

// Package ctr runs containerd's ctr client, pointed at kedge's containerd
// and the Kubernetes (k8s.io) namespace unless the user chose otherwise.
package ctr

import (
	"context"
	"fmt"
	"os"

	"github.com/containerd/containerd/v2/cmd/ctr/app"
)

// DefaultSocket is the agent's containerd socket with the default --run-dir.
const DefaultSocket = "/run/kedge/containerd/containerd.sock"

// Main runs ctr with args (without the program name) and returns its exit code.
func Main(args []string) int {
	if os.Getenv("CONTAINERD_ADDRESS") == "" {
		os.Setenv("CONTAINERD_ADDRESS", DefaultSocket)
	}
	if os.Getenv("CONTAINERD_NAMESPACE") == "" {
		os.Setenv("CONTAINERD_NAMESPACE", "k8s.io")
	}
	if err := app.New().Run(context.Background(), append([]string{"ctr"}, args...)); err != nil {
		fmt.Fprintln(os.Stderr, "ctr:", err)
		return 1
	}
	return 0
}

// Package crictl runs the crictl carried in kedge's runtime bundle, pointed
// at kedge's containerd unless the user chose another endpoint.
package crictl

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/kedge/kedge/agent/runtime/bundle"
	"github.com/kedge/kedge/embedded/ctr"
	"github.com/kedge/kedge/shared/atomicfile"
	"github.com/kedge/kedge/shared/datadir"
)

// Main replaces the process with crictl and args (without the program
// name); it returns an exit code only if crictl could not be started.
func Main(args []string) int {
	dataDir := os.Getenv("KEDGE_DATA_DIR")
	if dataDir == "" {
		dataDir = datadir.Default // where the bundle is unpacked
	}
	bin, err := bundle.Install(dataDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kedge crictl:", err)
		return 1
	}
	if os.Getenv("CONTAINER_RUNTIME_ENDPOINT") == "" {
		os.Setenv("CONTAINER_RUNTIME_ENDPOINT", "unix://"+ctr.DefaultSocket)
	}
	if os.Getenv("CRI_CONFIG_FILE") == "" {
		// Without a config file crictl warns on every call; kedge's points
		// at its containerd (the variable above still wins).
		cfg := filepath.Join(bin, "crictl.yaml")
		if _, err := os.Stat(cfg); err != nil {
			endpoint := "unix://" + ctr.DefaultSocket
			_ = atomicfile.Write(cfg, []byte("runtime-endpoint: "+endpoint+"\nimage-endpoint: "+endpoint+"\n"), 0o644)
		}
		os.Setenv("CRI_CONFIG_FILE", cfg)
	}
	path := filepath.Join(bin, "crictl")
	err = syscall.Exec(path, append([]string{"crictl"}, args...), os.Environ())
	fmt.Fprintln(os.Stderr, "kedge crictl:", fmt.Errorf("run %s: %w", path, err))
	return 1
}

// Package adminclient is the cluster-admin client of kedge's commands that
// use the API (kedge token, kedge secrets-encrypt): $KUBECONFIG, or else
// the admin kubeconfig the server writes, as for kedge kubectl.
package adminclient

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kedge/kedge/server/config"
)

// Config is the client configuration from $KUBECONFIG (a list, as
// kubectl reads it) or config.DefaultKubeconfig, with a 30 s timeout. A
// missing kubeconfig is one error naming where it looked.
func Config() (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	files := filepath.SplitList(os.Getenv("KUBECONFIG"))
	if len(files) == 0 {
		rules.ExplicitPath = config.DefaultKubeconfig
		files = []string{config.DefaultKubeconfig}
	}
	found := false
	for _, f := range files {
		if _, err := os.Stat(f); err == nil {
			found = true
		}
	}
	if !found {
		return nil, fmt.Errorf("no kubeconfig at %s ($KUBECONFIG, else the admin kubeconfig the server writes)", strings.Join(files, ", "))
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	cfg.Timeout = 30 * time.Second
	return cfg, nil
}

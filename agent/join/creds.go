package join

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	certutil "k8s.io/client-go/util/cert"

	"github.com/kedge/kedge/shared/atomicfile"
	"github.com/kedge/kedge/shared/joinapi"
)

// File names of the node credentials in the credentials directory.
const (
	KubeletClientCert  = "kubelet-client.crt"
	KubeletClientKey   = "kubelet-client.key"
	KubeletServingCert = "kubelet-serving.crt"
	KubeletServingKey  = "kubelet-serving.key"
	KubeProxyCert      = "kube-proxy.crt"
	KubeProxyKey       = "kube-proxy.key"
	ServerCA           = "server-ca.crt"
	ClientCA           = "client-ca.crt"
	ClusterInfo        = "cluster.json"
)

// Save writes the credentials into dir (0700; keys 0600).
func (c *Certs) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	cluster, err := json.Marshal(c.Cluster)
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{
		KubeletClientCert: c.KubeletClientCert, KubeletClientKey: c.KubeletClientKey,
		KubeletServingCert: c.KubeletServingCert, KubeletServingKey: c.KubeletServingKey,
		KubeProxyCert: c.KubeProxyCert, KubeProxyKey: c.KubeProxyKey,
		ServerCA: c.ServerCA, ClientCA: c.ClientCA, ClusterInfo: cluster,
	} {
		if err := atomicfile.Write(filepath.Join(dir, name), data, 0o600); err != nil {
			return fmt.Errorf("save %s: %w", name, err)
		}
	}
	return nil
}

// LoadCluster reads the cluster facts saved with the credentials.
func LoadCluster(dir string) (joinapi.Cluster, error) {
	var c joinapi.Cluster
	b, err := os.ReadFile(filepath.Join(dir, ClusterInfo))
	if err != nil {
		return c, err
	}
	return c, json.Unmarshal(b, &c)
}

// Usable reports whether dir holds a complete set of credentials whose
// certificates are valid for at least another day, so the agent can start
// without the server (after a reboot while offline, say).
func Usable(dir string) error {
	for _, name := range []string{KubeletClientKey, KubeletServingKey, KubeProxyKey, ServerCA, ClientCA, ClusterInfo} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	for _, name := range []string{KubeletClientCert, KubeletServingCert, KubeProxyCert} {
		certs, err := certutil.CertsFromFile(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		if time.Until(certs[0].NotAfter) < 24*time.Hour {
			return fmt.Errorf("%s expires at %s", name, certs[0].NotAfter)
		}
	}
	return nil
}

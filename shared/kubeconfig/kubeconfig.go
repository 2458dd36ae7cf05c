// Package kubeconfig writes kubeconfig files for kedge's own components and
// for the admin.
package kubeconfig

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kedge/kedge/shared/atomicfile"
)

// Spec is one kubeconfig: a server, the CA that signs its serving cert, and
// a client certificate.
type Spec struct {
	Server string
	CAFile string
	// CertFile and KeyFile are referenced by path, or embedded with Embed.
	CertFile, KeyFile string
	// Embed copies the CA, certificate and key into the file, so it still
	// works when copied to another machine.
	Embed bool
	// Context names the cluster, user and context (default "kedge").
	Context string
	// TLSServerName, if set, is the name the server's certificate is
	// checked against instead of the host in Server.
	TLSServerName string
}

// Build returns the kubeconfig for s.
func Build(s Spec) (*clientcmdapi.Config, error) {
	name := s.Context
	if name == "" {
		name = "kedge"
	}
	cluster := &clientcmdapi.Cluster{Server: s.Server, CertificateAuthority: s.CAFile, TLSServerName: s.TLSServerName}
	user := &clientcmdapi.AuthInfo{ClientCertificate: s.CertFile, ClientKey: s.KeyFile}
	if s.Embed {
		var err error
		if cluster.CertificateAuthorityData, err = os.ReadFile(s.CAFile); err != nil {
			return nil, err
		}
		if user.ClientCertificateData, err = os.ReadFile(s.CertFile); err != nil {
			return nil, err
		}
		if user.ClientKeyData, err = os.ReadFile(s.KeyFile); err != nil {
			return nil, err
		}
		cluster.CertificateAuthority, user.ClientCertificate, user.ClientKey = "", "", ""
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = cluster
	cfg.AuthInfos[name] = user
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	cfg.CurrentContext = name
	return cfg, nil
}

// Write renders s to path with the given mode, atomically, creating parent
// directories (0755) as needed. An unchanged file is not written again.
func Write(path string, s Spec, mode os.FileMode) error {
	cfg, err := Build(s)
	if err != nil {
		return fmt.Errorf("build kubeconfig %s: %w", path, err)
	}
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return os.Chmod(path, mode) // unchanged: no write to the disk
	}
	if err := atomicfile.Write(path, data, mode); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return nil
}

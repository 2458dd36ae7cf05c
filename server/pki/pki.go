// Package pki creates and reuses the certificates a kedge control plane
// needs, under <data-dir>/server/tls.
//
// Certificate authorities are created once and never replaced. Leaf
// certificates are reused and reissued only when missing, broken, due for
// renewal (certlife: a third of their year left), or lacking a requested
// name; a renewal keeps the key. Private keys are written 0600.
package pki

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/kedge/kedge/shared/certlife"
)

// Request says which names the serving certificates must cover.
type Request struct {
	// Dir is the TLS directory, normally <data-dir>/server/tls.
	Dir string
	// APIServerDNS and APIServerIPs are the apiserver serving certificate's SANs.
	APIServerDNS []string
	APIServerIPs []net.IP
	// Etcd adds the etcd CAs and certificates, with EtcdDNS/EtcdIPs as the
	// etcd serving and peer certificate SANs.
	Etcd    bool
	EtcdDNS []string
	EtcdIPs []net.IP
	// MetricsServerDNS, if set, adds a serving certificate for the metrics
	// API with these names (metrics-server.kube-system.svc).
	MetricsServerDNS []string
	// Now is the issue time; zero means time.Now().
	Now time.Time
}

// Files are the paths of everything Ensure keeps.
type Files struct {
	ServerCA, ServerCAKey           string
	ClientCA, ClientCAKey           string
	RequestHeaderCA                 string
	ServiceAccountKey               string
	ServingCert, ServingKey         string
	AdminCert, AdminKey             string
	KubeletClientCert, KubeletKey   string
	SchedulerCert, SchedulerKey     string
	ControllerCert, ControllerKey   string
	AuthProxyCert, AuthProxyKey     string
	EtcdServerCA, EtcdPeerCA        string
	EtcdServingCert, EtcdServingKey string
	EtcdPeerCert, EtcdPeerKey       string
	EtcdClientCert, EtcdClientKey   string
	// MetricsServingCert and MetricsServingKey are set if
	// Request.MetricsServerDNS is.
	MetricsServingCert, MetricsServingKey string

	// Issued lists the leaf certificates this call issued.
	Issued []Issued
}

// Issued is a leaf certificate Ensure issued.
type Issued struct {
	Name     string // file name without .crt, e.g. serving-kube-apiserver
	CertFile string
	// Replaced is the certificate it replaced (due for renewal, or lacking
	// a name), nil for a new one.
	Replaced *x509.Certificate
}

// Key usages for Leaf.Usages.
var (
	ServerAuth      = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	ClientAuth      = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	serverAndClient = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
)

// Ensure creates whatever is missing and returns the paths of all files.
// It never overwrites a CA; it fails if one is damaged.
func Ensure(req Request, log *slog.Logger) (*Files, error) {
	now := req.Now
	if now.IsZero() {
		now = time.Now()
	}
	if err := os.MkdirAll(req.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create TLS dir: %w", err)
	}
	serverCA, err := ensureCA(req.Dir, "server-ca", "kedge-server-ca")
	if err != nil {
		return nil, err
	}
	clientCA, err := ensureCA(req.Dir, "client-ca", "kedge-client-ca")
	if err != nil {
		return nil, err
	}
	rhCA, err := ensureCA(req.Dir, "request-header-ca", "kedge-request-header-ca")
	if err != nil {
		return nil, err
	}
	f := &Files{
		ServerCA: serverCA.CertPath, ServerCAKey: serverCA.KeyPath,
		ClientCA: clientCA.CertPath, ClientCAKey: clientCA.KeyPath,
		RequestHeaderCA:   rhCA.CertPath,
		ServiceAccountKey: filepath.Join(req.Dir, "service-account.key"),
	}
	if err := ensureKey(f.ServiceAccountKey); err != nil {
		return nil, err
	}

	type issue struct {
		ca        *CA
		dir, name string
		leaf      Leaf
		cert, key *string
	}
	issues := []issue{
		{serverCA, req.Dir, "serving-kube-apiserver", Leaf{CommonName: "kube-apiserver", DNSNames: req.APIServerDNS, IPs: req.APIServerIPs, Usages: ServerAuth}, &f.ServingCert, &f.ServingKey},
		{clientCA, req.Dir, "client-admin", Leaf{CommonName: "system:admin", Organization: []string{"system:masters"}, Usages: ClientAuth}, &f.AdminCert, &f.AdminKey},
		{clientCA, req.Dir, "client-kube-apiserver", Leaf{CommonName: "system:kube-apiserver", Organization: []string{"system:masters"}, Usages: ClientAuth}, &f.KubeletClientCert, &f.KubeletKey},
		{clientCA, req.Dir, "client-scheduler", Leaf{CommonName: "system:kube-scheduler", Usages: ClientAuth}, &f.SchedulerCert, &f.SchedulerKey},
		{clientCA, req.Dir, "client-controller", Leaf{CommonName: "system:kube-controller-manager", Usages: ClientAuth}, &f.ControllerCert, &f.ControllerKey},
		{rhCA, req.Dir, "client-auth-proxy", Leaf{CommonName: "system:auth-proxy", Usages: ClientAuth}, &f.AuthProxyCert, &f.AuthProxyKey},
	}
	if len(req.MetricsServerDNS) > 0 {
		issues = append(issues, issue{serverCA, req.Dir, "serving-metrics-server",
			Leaf{CommonName: "metrics-server", DNSNames: req.MetricsServerDNS, Usages: ServerAuth}, &f.MetricsServingCert, &f.MetricsServingKey})
	}
	if req.Etcd {
		etcdDir := filepath.Join(req.Dir, "etcd")
		etcdServerCA, err := ensureCA(etcdDir, "server-ca", "kedge-etcd-server-ca")
		if err != nil {
			return nil, err
		}
		etcdPeerCA, err := ensureCA(etcdDir, "peer-ca", "kedge-etcd-peer-ca")
		if err != nil {
			return nil, err
		}
		f.EtcdServerCA, f.EtcdPeerCA = etcdServerCA.CertPath, etcdPeerCA.CertPath
		issues = append(issues,
			issue{etcdServerCA, etcdDir, "server", Leaf{CommonName: "etcd-server", DNSNames: req.EtcdDNS, IPs: req.EtcdIPs, Usages: serverAndClient}, &f.EtcdServingCert, &f.EtcdServingKey},
			issue{etcdPeerCA, etcdDir, "peer", Leaf{CommonName: "etcd-peer", DNSNames: req.EtcdDNS, IPs: req.EtcdIPs, Usages: serverAndClient}, &f.EtcdPeerCert, &f.EtcdPeerKey},
			issue{etcdServerCA, etcdDir, "client", Leaf{CommonName: "etcd-client", Usages: ClientAuth}, &f.EtcdClientCert, &f.EtcdClientKey},
		)
	}
	for _, is := range issues {
		cert, key, replaced, issued, err := ensureLeaf(is.ca, is.dir, is.name, is.leaf, now)
		if err != nil {
			return nil, err
		}
		if issued {
			f.Issued = append(f.Issued, Issued{Name: is.name, CertFile: cert, Replaced: replaced})
			switch {
			case log == nil:
			case replaced == nil:
				log.Info("issued certificate", "name", is.name)
			default:
				log.Warn("renewed certificate", "name", is.name, "file", cert,
					"expires", replaced.NotAfter.UTC().Format(time.RFC3339), "left", certlife.Left(replaced.NotAfter, now))
			}
		}
		*is.cert, *is.key = cert, key
	}
	return f, nil
}

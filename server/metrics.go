package server

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/kedge/kedge/embedded/component"
	"github.com/kedge/kedge/server/config"
	"github.com/kedge/kedge/server/controllers/metricsapi"
	"github.com/kedge/kedge/server/pki"
	"github.com/kedge/kedge/server/supervisor"
)

// metricsAddon is the --disable name of the metrics API.
const metricsAddon = "metrics-server"

// metricsDNS is the serving certificate's names for the metrics API, none
// when it is disabled.
func metricsDNS(cc *config.Completed) []string {
	if cc.AddonDisabled(metricsAddon) {
		return nil
	}
	return []string{metricsapi.ServerName}
}

// metricsAPI is the in-process metrics.k8s.io API (instead of a
// metrics-server pod): its components, and the supervisor route on which
// the aggregator reaches it (TLS server name metrics-server.kube-system.svc
// on the public port). Nothing when the add-on is disabled.
func metricsAPI(cc *config.Completed, tls *pki.Files, restCfg *rest.Config, log *slog.Logger) ([]component.Component, *supervisor.Named, error) {
	if cc.AddonDisabled(metricsAddon) {
		return nil, nil, nil
	}
	rhCA, err := os.ReadFile(tls.RequestHeaderCA)
	if err != nil {
		return nil, nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rhCA) {
		return nil, nil, fmt.Errorf("%s: no certificates", tls.RequestHeaderCA)
	}
	// Its own rate limit: scrapes and lookups must not slow the server's
	// other clients.
	cfg := rest.CopyConfig(restCfg)
	cfg.QPS, cfg.Burst = 20, 40
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	meta, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	mlog := log.With("component", "metrics")
	store := &metricsapi.Store{}
	handler := &metricsapi.Handler{
		Store: store, Reviews: client.AuthorizationV1().SubjectAccessReviews(), Metadata: meta,
		// --requestheader-allowed-names of the apiserver (server/control).
		ClientCAs: roots, AllowedNames: []string{"system:auth-proxy"}, Log: mlog,
	}
	comps := []component.Component{
		&metricsapi.Collector{Client: client, Store: store, Log: mlog},
		&metricsapi.Endpoints{Client: client, Server: cc.NodeName, IP: cc.AdvertiseIP, Port: int32(cc.HTTPSListenPort), Log: mlog},
	}
	route := &supervisor.Named{ServerName: metricsapi.ServerName, CertFile: tls.MetricsServingCert, KeyFile: tls.MetricsServingKey, Handler: handler}
	return comps, route, nil
}

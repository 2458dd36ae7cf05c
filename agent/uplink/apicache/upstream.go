package apicache

import (
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"time"

	"github.com/kedge/kedge/shared/keypair"
)

// upstreamAs reaches the servers with one client certificate. When the
// certificate files are renewed, new requests go through a new connection
// pool that presents the new certificate (the apiserver authenticates each
// request with the connection's certificate, so an expired one on a kept
// connection would be refused); requests in flight, such as watches, finish
// on the old connections, which are closed once idle.
type upstreamAs struct {
	p     *Proxy
	roots *x509.CertPool
	files *keypair.Files

	mu   sync.Mutex
	cert *tls.Certificate
	tr   *http.Transport
	rp   *httputil.ReverseProxy
	hc   *http.Client
}

// current returns the transport, proxy and client for the certificate in
// the files now.
func (u *upstreamAs) current() (*httputil.ReverseProxy, *http.Client) {
	cert, err := u.files.Certificate()
	u.mu.Lock()
	defer u.mu.Unlock()
	if err == nil && cert != u.cert {
		if u.tr != nil {
			u.tr.CloseIdleConnections()
		}
		u.cert = cert
		u.build(cert)
	}
	return u.rp, u.hc
}

func (u *upstreamAs) proxy() *httputil.ReverseProxy { rp, _ := u.current(); return rp }

func (u *upstreamAs) client() *http.Client { _, hc := u.current(); return hc }

func (u *upstreamAs) build(cert *tls.Certificate) {
	p := u.p
	u.tr = &http.Transport{
		TLSClientConfig:       &tls.Config{RootCAs: u.roots, Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12},
		DialContext:           (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 15 * time.Second}).DialContext,
		TLSHandshakeTimeout:   3 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   4,
		// A cut link is noticed by pings, not by waiting for TCP.
		HTTP2: &http.HTTP2Config{SendPingTimeout: 5 * time.Second, PingTimeout: 5 * time.Second},
	}
	u.hc = &http.Client{Transport: u.tr, Timeout: 2 * time.Second}
	u.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(p.upstream)
			pr.Out.Host = p.upstream.Host
		},
		Transport:      u.tr,
		FlushInterval:  -1,
		ModifyResponse: p.record,
		ErrorHandler:   p.upstreamFailed,
		ErrorLog:       slog.NewLogLogger(p.Log.Handler(), slog.LevelDebug),
	}
}

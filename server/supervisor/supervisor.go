// Package supervisor serves the server's public HTTPS port: the join API
// and the agents' tunnel endpoint (kedge's own paths) and, for everything
// else, the in-process kube-apiserver's handler, so that one port serves
// both.
package supervisor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/kedge/kedge/embedded/component"
	"github.com/kedge/kedge/shared/joinapi"
	"github.com/kedge/kedge/shared/keypair"
)

// Supervisor is the HTTPS listener on the server's public port.
type Supervisor struct {
	// Addr is host:port to listen on.
	Addr string
	// CertFile and KeyFile are the serving certificate; CAFile verifies it in
	// the readiness check.
	CertFile, KeyFile, CAFile string
	// API returns the apiserver's handler (nil until it is built).
	API func() http.Handler
	// Join serves joinapi.CACertsPath and paths under joinapi.Prefix.
	Join http.Handler
	// Tunnel, if set, serves joinapi.TunnelPath: the agents' reverse tunnels.
	Tunnel http.Handler
	// Named, if set, serves the connections made with its TLS server name
	// (SNI): an aggregated API that the apiserver dials as
	// <service>.<namespace>.svc on this port (the metrics API).
	Named *Named
	Log   *slog.Logger
}

// Named is a handler for the connections made with TLS server name
// ServerName, which are presented CertFile/KeyFile instead of the
// apiserver's certificate. Its handler authenticates its clients itself.
type Named struct {
	ServerName        string
	CertFile, KeyFile string
	Handler           http.Handler
}

var _ component.Component = (*Supervisor)(nil)

// Name implements component.Component.
func (s *Supervisor) Name() string { return "supervisor" }

// Handler routes a request to the join API or the apiserver.
func (s *Supervisor) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.Named != nil && r.TLS != nil && r.TLS.ServerName == s.Named.ServerName {
			s.Named.Handler.ServeHTTP(w, r)
			return
		}
		if r.URL.Path == joinapi.TunnelPath && s.Tunnel != nil {
			s.Tunnel.ServeHTTP(w, r)
			return
		}
		if r.URL.Path == joinapi.CACertsPath || strings.HasPrefix(r.URL.Path, joinapi.Prefix) {
			s.Join.ServeHTTP(w, r)
			return
		}
		api := s.API()
		if api == nil {
			http.Error(w, "kube-apiserver is starting", http.StatusServiceUnavailable)
			return
		}
		api.ServeHTTP(w, r)
	})
}

// Run listens and serves until ctx is done. It is ready once a TLS request to
// itself, verified against CAFile, returns the CA bundle.
func (s *Supervisor) Run(ctx context.Context, ready func()) error {
	// Renewed certificates are served without a restart.
	cert, err := keypair.Load(s.CertFile, s.KeyFile)
	if err != nil {
		return fmt.Errorf("load serving certificate: %w", err)
	}
	var named *keypair.Files
	if s.Named != nil {
		if named, err = keypair.Load(s.Named.CertFile, s.Named.KeyFile); err != nil {
			return fmt.Errorf("load %s serving certificate: %w", s.Named.ServerName, err)
		}
	}
	l, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler: s.Handler(),
		TLSConfig: &tls.Config{
			GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
				if named != nil && hello.ServerName == s.Named.ServerName {
					return named.Certificate()
				}
				return cert.Certificate()
			},
			MinVersion: tls.VersionTLS12,
			// Client certificates are verified by the apiserver's
			// authenticators, which also accept front-proxy certificates.
			ClientAuth: tls.RequestClientCert,
		},
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: 250},
		ReadHeaderTimeout: 32 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.Log.Handler(), slog.LevelDebug),
	}
	served := make(chan error, 1)
	go func() { served <- srv.ServeTLS(l, "", "") }()
	go component.PollReady(ctx, 100*time.Millisecond, s.selfCheck(l.Addr().String()), ready)

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		// Watches and exec streams do not end by themselves; cut them.
		_ = srv.Close()
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (s *Supervisor) selfCheck(addr string) func(context.Context) error {
	return func(ctx context.Context) error {
		caPEM, err := os.ReadFile(s.CAFile)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(caPEM)
		_, port, _ := net.SplitHostPort(addr)
		host := "127.0.0.1"
		if h, _, _ := net.SplitHostPort(s.Addr); h != "" && !net.ParseIP(h).IsUnspecified() {
			host = h
		}
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		defer client.CloseIdleConnections()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+net.JoinHostPort(host, port)+joinapi.CACertsPath, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil || resp.StatusCode != http.StatusOK {
			return fmt.Errorf("self check: %s %v", resp.Status, err)
		}
		return nil
	}
}

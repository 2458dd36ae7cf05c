package supervisor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kedge/kedge/scripts/testenv"
	"github.com/kedge/kedge/server/pki"
	"github.com/kedge/kedge/shared/joinapi"
)

// named answers with its name and whether the client sent a certificate.
func named(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cn := ""
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			cn = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		fmt.Fprintf(w, "%s %s", name, cn)
	})
}

const metricsName = "metrics-server.kube-system.svc"

func TestHandlerRoutes(t *testing.T) {
	full := &Supervisor{
		API: func() http.Handler { return named("api") }, Join: named("join"), Tunnel: named("tunnel"),
		Named: &Named{ServerName: metricsName, Handler: named("metrics")},
	}
	starting := &Supervisor{API: func() http.Handler { return nil }, Join: named("join")}
	for _, tc := range []struct {
		name       string
		s          *Supervisor
		path, sni  string
		status     int
		wantHandle string
	}{
		{"cacerts", full, joinapi.CACertsPath, "", 200, "join"},
		{"join API", full, joinapi.NodeCertsPath, "", 200, "join"},
		{"tunnel", full, joinapi.TunnelPath, "", 200, "tunnel"},
		{"tunnel disabled: the join API answers", starting, joinapi.TunnelPath, "", 200, "join"},
		{"kubernetes API", full, "/api/v1/nodes", "", 200, "api"},
		{"kedge-looking path outside the prefix", full, "/v1-kedgex", "", 200, "api"},
		{"metrics API by server name", full, "/apis/metrics.k8s.io/v1beta1/nodes", metricsName, 200, "metrics"},
		{"even the join path by server name", full, joinapi.CACertsPath, metricsName, 200, "metrics"},
		{"another server name", full, "/api", "kubernetes.default.svc", 200, "api"},
		{"apiserver not built yet", starting, "/api", "", http.StatusServiceUnavailable, "kube-apiserver is starting"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "https://kedge"+tc.path, nil)
			r.TLS = &tls.ConnectionState{ServerName: tc.sni}
			w := httptest.NewRecorder()
			tc.s.Handler().ServeHTTP(w, r)
			if w.Code != tc.status || !strings.HasPrefix(w.Body.String(), tc.wantHandle) {
				t.Fatalf("%s: %d %q, want %d from %s", tc.path, w.Code, w.Body, tc.status, tc.wantHandle)
			}
		})
	}
}

// serving makes a server PKI with a metrics serving certificate.
func serving(t *testing.T) *pki.Files {
	t.Helper()
	f, err := pki.Ensure(pki.Request{Dir: t.TempDir(), APIServerIPs: []net.IP{net.ParseIP("127.0.0.1")},
		MetricsServerDNS: []string{metricsName}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestRunServesTLS(t *testing.T) {
	f := serving(t)
	// Listening on port 0, the port is learnt from the self check's request.
	var addr atomic.Value
	join := named("join")
	s := &Supervisor{Addr: "127.0.0.1:0", CertFile: f.ServingCert, KeyFile: f.ServingKey, CAFile: f.ServerCA,
		API: func() http.Handler { return named("api") },
		Join: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			addr.Store(r.Host)
			join.ServeHTTP(w, r)
		}),
		Named: &Named{ServerName: metricsName, CertFile: f.MetricsServingCert, KeyFile: f.MetricsServingKey, Handler: named("metrics")},
		Log:   slog.New(slog.DiscardHandler)}
	testenv.Start(t, s.Run).WaitReady(30 * time.Second)

	caPEM, err := os.ReadFile(f.ServerCA)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	admin, err := tls.LoadX509KeyPair(f.AdminCert, f.AdminKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		sni        string
		clientCert bool
		want       string
		wantDNS    string // in the certificate presented
	}{
		{"apiserver certificate, no client certificate", "", false, "api ", ""},
		{"client certificate passed to the handler", "", true, "api system:admin", ""},
		{"metrics certificate by server name", metricsName, true, "metrics system:admin", metricsName},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &tls.Config{RootCAs: roots, ServerName: tc.sni}
			if tc.clientCert {
				cfg.Certificates = []tls.Certificate{admin}
			}
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
			defer client.CloseIdleConnections()
			resp, err := client.Get("https://" + addr.Load().(string) + "/api")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if string(body) != tc.want {
				t.Errorf("answer %q, want %q", body, tc.want)
			}
			if dns := resp.TLS.PeerCertificates[0].DNSNames; tc.wantDNS != "" && !slices.Contains(dns, tc.wantDNS) {
				t.Errorf("presented a certificate for %v, want %s", dns, tc.wantDNS)
			}
		})
	}
}

func TestRunNotReadyUntilSelfCheckPasses(t *testing.T) {
	f := serving(t)
	ctx, cancel := context.WithCancel(t.Context())
	var checks atomic.Int32
	s := &Supervisor{Addr: "127.0.0.1:0", CertFile: f.ServingCert, KeyFile: f.ServingKey, CAFile: f.ServerCA,
		Join: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if checks.Add(1) == 2 {
				cancel()
			}
			http.Error(w, "no CA yet", http.StatusInternalServerError)
		}),
		Log: slog.New(slog.DiscardHandler)}
	if err := s.Run(ctx, func() { t.Error("ready although /cacerts fails") }); err != nil {
		t.Fatalf("Run = %v, want nil after cancel", err)
	}
	if n := checks.Load(); n < 2 {
		t.Errorf("self check ran %d times", n)
	}
}

func TestRunFails(t *testing.T) {
	f := serving(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct {
		name string
		s    *Supervisor
		want string
	}{
		{"no serving certificate", &Supervisor{Addr: "127.0.0.1:0", CertFile: f.ServingCert + ".missing", KeyFile: f.ServingKey}, "load serving certificate"},
		{"no named certificate", &Supervisor{Addr: "127.0.0.1:0", CertFile: f.ServingCert, KeyFile: f.ServingKey,
			Named: &Named{ServerName: metricsName, CertFile: f.ServingCert, KeyFile: f.AdminKey}}, "load " + metricsName + " serving certificate"},
		{"port in use", &Supervisor{Addr: busy.Addr().String(), CertFile: f.ServingCert, KeyFile: f.ServingKey}, "address already in use"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.s.Run(t.Context(), func() { t.Error("ready") })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run = %v, want %q", err, tc.want)
			}
		})
	}
}

package apicache

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestRefusesUnknownClients: the endpoint requires a client certificate of
// a configured identity.
func TestRefusesUnknownClients(t *testing.T) {
	p := &Proxy{proxies: map[string]*upstreamAs{}}
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/pods", nil))
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("no client certificate: %d", rec.Code)
	}
}

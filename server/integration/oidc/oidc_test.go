// Package oidc_test checks service-account issuer discovery on a real
// control plane: a pod's token reads the OIDC discovery document through
// the public port and the key set at its jwks_uri verifies the token's key.
package oidc_test

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kedge/kedge/server/integration/harness"
)

func TestIssuerDiscoveryThroughPublicPort(t *testing.T) {
	dir := t.TempDir()
	c := harness.NewConfig(t, dir)
	srv := harness.StartInProcess(t, c)
	ctx := t.Context()

	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "discovery", Namespace: "default"}}
	if _, err := srv.Client.CoreV1().ServiceAccounts("default").Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := srv.Client.CoreV1().ServiceAccounts("default").CreateToken(ctx, "discovery",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	token := tr.Status.Token

	roots := harness.ServerCAPool(t, dir)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	get := func(u string, into any) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", u, resp.Status)
		}
		if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
	}

	public := net.JoinHostPort("127.0.0.1", strconv.Itoa(c.HTTPSListenPort))
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	get("https://"+public+"/.well-known/openid-configuration", &doc)
	u, err := url.Parse(doc.JWKSURI)
	if err != nil {
		t.Fatal(err)
	}
	if u.Host != public {
		t.Errorf("jwks_uri %s does not name the public port %s", doc.JWKSURI, public)
	}

	var jwks struct {
		Keys []struct {
			KeyID string `json:"kid"`
		} `json:"keys"`
	}
	get(doc.JWKSURI, &jwks)
	kid := tokenKeyID(t, token)
	found := false
	for _, k := range jwks.Keys {
		found = found || k.KeyID == kid
	}
	if !found {
		t.Fatalf("the key set at %s has no key %q (keys %+v)", doc.JWKSURI, kid, jwks.Keys)
	}
}

// tokenKeyID returns the kid in a JWT's header.
func tokenKeyID(t *testing.T, jwt string) string {
	t.Helper()
	header, _, _ := strings.Cut(jwt, ".")
	raw, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		KeyID string `json:"kid"`
	}
	if err := json.Unmarshal(raw, &h); err != nil || h.KeyID == "" {
		t.Fatalf("token header %s: %v", raw, err)
	}
	return h.KeyID
}

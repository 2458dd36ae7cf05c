package join

import (
	"net/http"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/fake"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"

	"github.com/kedge/kedge/server/token/bootstrap"
	"github.com/kedge/kedge/shared/joinapi"
	"github.com/kedge/kedge/shared/token"
)

var joinNow = time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)

// withBootstrapTokens gives h an Authenticator over Secrets for tokens
// (id.secret → mutation of its Secret), at joinNow.
func withBootstrapTokens(t *testing.T, h *Handler, tokens map[string]func(*corev1.Secret)) {
	t.Helper()
	cs := fake.NewClientset()
	for tok, mutate := range tokens {
		s, err := bootstrap.NewSecret(tok, bootstrap.Spec{TTL: time.Hour}, joinNow)
		if err != nil {
			t.Fatal(err)
		}
		if mutate != nil {
			mutate(s)
		}
		if err := cs.Tracker().Add(s); err != nil {
			t.Fatal(err)
		}
	}
	h.Bootstrap = &bootstrap.Authenticator{Client: cs, Now: func() time.Time { return joinNow }}
}

const (
	validBoot   = "aaaaaa.0123456789abcdef"
	expiredBoot = "bbbbbb.0123456789abcdef"
	noUsageBoot = "cccccc.0123456789abcdef"
)

var bootstrapSecrets = map[string]func(*corev1.Secret){
	validBoot: nil,
	expiredBoot: func(s *corev1.Secret) {
		s.Data[bootstrapapi.BootstrapTokenExpirationKey] = []byte(joinNow.Add(-time.Second).Format(time.RFC3339))
	},
	noUsageBoot: func(s *corev1.Secret) { delete(s.Data, bootstrapapi.BootstrapTokenUsageAuthentication) },
}

// TestNodeJoinWithBootstrapTokens is the node-certs decision for each kind
// of presented bootstrap token.
func TestNodeJoinWithBootstrapTokens(t *testing.T) {
	cases := []struct {
		name, user, pass string
		status           int
	}{
		{"valid", token.BootstrapUser, validBoot, http.StatusOK},
		{"expired (the cleaner has not removed it yet)", token.BootstrapUser, expiredBoot, http.StatusUnauthorized},
		{"unknown id", token.BootstrapUser, "dddddd.0123456789abcdef", http.StatusUnauthorized},
		{"wrong secret", token.BootstrapUser, "aaaaaa.0123456789abcdee", http.StatusUnauthorized},
		{"usage-bootstrap-authentication missing", token.BootstrapUser, noUsageBoot, http.StatusUnauthorized},
		{"malformed", token.BootstrapUser, "aaaaaa0123456789abcdef", http.StatusUnauthorized},
		{"valid bootstrap token as user node", token.NodeUser, validBoot, http.StatusUnauthorized},
		{"server token as user bootstrap", token.BootstrapUser, secret, http.StatusUnauthorized},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := newHandler(t)
			withBootstrapTokens(t, h, bootstrapSecrets)
			rec := do(h, http.MethodPost, joinapi.NodeCertsPath, request(t, func(r *joinapi.NodeCertsRequest) {
				r.NodeName = "edge-" + string(rune('a'+i))
			}), tc.user, tc.pass)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body.String())
			}
			// Every refusal reads the same: a client cannot tell an
			// unknown id from a wrong secret.
			if rec.Code == http.StatusUnauthorized && rec.Body.String() != "token rejected\n" {
				t.Fatalf("401 body %q says more than \"token rejected\"", rec.Body.String())
			}
		})
	}
}

// TestBootstrapTokensNeverJoinServers: 403 for a valid one, 401 for others;
// no etcd member is added either way.
func TestBootstrapTokensNeverJoinServers(t *testing.T) {
	h, m := newServerJoinHandler(t)
	withBootstrapTokens(t, h, bootstrapSecrets)
	for pass, status := range map[string]int{validBoot: http.StatusForbidden, expiredBoot: http.StatusUnauthorized, "zzzzzz.0123456789abcdef": http.StatusUnauthorized} {
		if rec := do(h, http.MethodPost, joinapi.ServerJoinPath, serverJoinBody(nil), token.BootstrapUser, pass); rec.Code != status {
			t.Errorf("%s: status %d, want %d: %s", pass[:6], rec.Code, status, rec.Body.String())
		}
	}
	// A bootstrap token with the server token's secret still is not the server token.
	if rec := do(h, http.MethodPost, joinapi.ServerJoinPath, serverJoinBody(nil), token.BootstrapUser, secret); rec.Code != http.StatusUnauthorized {
		t.Errorf("server secret as user bootstrap: %d", rec.Code)
	}
	if len(m.added) != 0 {
		t.Fatalf("refused joins added members %v", m.added)
	}
}

// TestServerTokenIsReadOnEveryRequest: a rotation seen by the handler's
// source takes effect at once for nodes and servers.
func TestServerTokenIsReadOnEveryRequest(t *testing.T) {
	h, _ := newHandler(t)
	current := secret
	h.ServerSecret = func() string { return current }
	if rec := do(h, http.MethodPost, joinapi.NodeCertsPath, request(t, nil), token.ServerUser, secret); rec.Code != http.StatusOK {
		t.Fatalf("before rotation: %d", rec.Code)
	}
	current = "rotated-secret-0123456789"
	if rec := do(h, http.MethodPost, joinapi.NodeCertsPath, request(t, nil), token.ServerUser, secret); rec.Code != http.StatusUnauthorized {
		t.Fatalf("old token after rotation: %d", rec.Code)
	}
	if rec := do(h, http.MethodPost, joinapi.NodeCertsPath, request(t, nil), token.NodeUser, current); rec.Code != http.StatusOK {
		t.Fatalf("new token after rotation: %d %s", rec.Code, rec.Body.String())
	}
	s, _ := newServerJoinHandler(t)
	s.ServerSecret = func() string { return current }
	if rec := do(s, http.MethodPost, joinapi.ServerJoinPath, serverJoinBody(nil), token.ServerUser, secret); rec.Code != http.StatusUnauthorized {
		t.Fatalf("server join with the old token: %d", rec.Code)
	}
	if rec := do(s, http.MethodPost, joinapi.ServerJoinPath, serverJoinBody(nil), token.ServerUser, current); rec.Code != http.StatusOK {
		t.Fatalf("server join with the new token: %d %s", rec.Code, rec.Body.String())
	}
}

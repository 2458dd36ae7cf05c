package bootstrap

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
)

const tok = "abcdef.0123456789abcdef"

var now = time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)

func secretFor(t *testing.T, spec Spec, mutate func(*corev1.Secret)) *corev1.Secret {
	t.Helper()
	s, err := NewSecret(tok, spec, now)
	if err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(s)
	}
	return s
}

// TestCheck is the join API's decision for a presented bootstrap token.
func TestCheck(t *testing.T) {
	hour := Spec{TTL: time.Hour}
	cases := []struct {
		name   string
		secret *corev1.Secret
		tok    string
		at     time.Time
		ok     bool
	}{
		{"valid", secretFor(t, hour, nil), tok, now, true},
		{"valid until the last second", secretFor(t, hour, nil), tok, now.Add(time.Hour - time.Second), true},
		{"never expires", secretFor(t, Spec{}, nil), tok, now.Add(10 * 365 * 24 * time.Hour), true},
		{"expired", secretFor(t, hour, nil), tok, now.Add(time.Hour), false},
		{"expired long ago", secretFor(t, hour, nil), tok, now.Add(48 * time.Hour), false},
		{"unparsable expiration counts as expired", secretFor(t, hour, func(s *corev1.Secret) {
			s.Data[bootstrapapi.BootstrapTokenExpirationKey] = []byte("tomorrow")
		}), tok, now, false},
		{"wrong secret", secretFor(t, hour, nil), "abcdef.0123456789abcdee", now, false},
		{"usage missing", secretFor(t, hour, func(s *corev1.Secret) {
			delete(s.Data, bootstrapapi.BootstrapTokenUsageAuthentication)
		}), tok, now, false},
		{"usage false", secretFor(t, hour, func(s *corev1.Secret) {
			s.Data[bootstrapapi.BootstrapTokenUsageAuthentication] = []byte("false")
		}), tok, now, false},
		{"other secret type", secretFor(t, hour, func(s *corev1.Secret) { s.Type = corev1.SecretTypeOpaque }), tok, now, false},
		{"id mismatch", secretFor(t, hour, func(s *corev1.Secret) {
			s.Data[bootstrapapi.BootstrapTokenIDKey] = []byte("zzzzzz")
		}), tok, now, false},
		{"empty secret in the Secret", secretFor(t, hour, func(s *corev1.Secret) {
			s.Data[bootstrapapi.BootstrapTokenSecretKey] = nil
		}), "abcdef.", now, false},
		{"being deleted", secretFor(t, hour, func(s *corev1.Secret) { s.DeletionTimestamp = &metav1.Time{Time: now} }), tok, now, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Check(c.secret, c.tok, c.at)
			if c.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !c.ok {
				if !errors.Is(err, ErrRejected) {
					t.Fatalf("err = %v, want ErrRejected", err)
				}
				if strings.Contains(err.Error(), "0123456789abcde") {
					t.Fatalf("error leaks the secret: %v", err)
				}
			}
		})
	}
}

func TestAuthenticateReadsTheSecret(t *testing.T) {
	cs := fake.NewClientset(secretFor(t, Spec{TTL: time.Hour}, nil))
	clock := now
	a := &Authenticator{Client: cs, Now: func() time.Time { return clock }}
	ctx := t.Context()
	if err := a.Authenticate(ctx, tok); err != nil {
		t.Fatalf("valid token refused: %v", err)
	}
	for name, in := range map[string]string{
		"unknown id": "zzzzzz.0123456789abcdef",
		"malformed":  "abcdef0123456789abcdef",
		"upper case": "ABCDEF.0123456789abcdef",
	} {
		if err := a.Authenticate(ctx, in); !errors.Is(err, ErrRejected) {
			t.Errorf("%s: err = %v, want ErrRejected", name, err)
		}
	}
	clock = now.Add(2 * time.Hour)
	if err := a.Authenticate(ctx, tok); !errors.Is(err, ErrRejected) {
		t.Fatalf("expired token: err = %v, want ErrRejected", err)
	}
}

func TestCreateListDelete(t *testing.T) {
	cs := fake.NewClientset(&corev1.Secret{ // not a bootstrap token: never listed
		ObjectMeta: metav1.ObjectMeta{Name: "bootstrap-token-zzzzzz", Namespace: metav1.NamespaceSystem}, Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{bootstrapapi.BootstrapTokenIDKey: []byte("zzzzzz")}})
	ctx := t.Context()
	spec := Spec{TTL: 24 * time.Hour, Description: "edge site 7", Groups: []string{"system:bootstrappers:edge"}}
	created, err := Create(ctx, cs, spec, now)
	if err != nil {
		t.Fatal(err)
	}
	id, secret, _ := strings.Cut(created, ".")
	s, err := cs.CoreV1().Secrets(metav1.NamespaceSystem).Get(ctx, "bootstrap-token-"+id, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Type != bootstrapapi.SecretTypeBootstrapToken || string(s.Data["token-secret"]) != secret ||
		string(s.Data["expiration"]) != "2026-12-07T10:00:00Z" || string(s.Data["auth-extra-groups"]) != "system:bootstrappers:edge" ||
		string(s.Data["usage-bootstrap-authentication"]) != "true" || string(s.Data["usage-bootstrap-signing"]) != "true" {
		t.Fatalf("Secret = %+v", s)
	}
	if err := Check(s, created, now); err != nil {
		t.Fatalf("a created token does not authenticate: %v", err)
	}
	never, err := Create(ctx, cs, Spec{}, now)
	if err != nil {
		t.Fatal(err)
	}
	list, err := List(ctx, cs, now.Add(25*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("List = %+v, want the two tokens", list)
	}
	byID := map[string]Info{list[0].ID: list[0], list[1].ID: list[1]}
	got := byID[id]
	if got.Expires == nil || !got.Expires.Equal(now.Add(24*time.Hour)) || !got.Expired || got.Description != "edge site 7" ||
		len(got.Groups) != 1 || len(got.Usages) != 2 {
		t.Fatalf("listed %+v", got)
	}
	if n := byID[never[:6]]; n.Expires != nil || n.Expired {
		t.Fatalf("a token without expiry listed as %+v", n)
	}
	b, _ := json.Marshal(list)
	if strings.Contains(string(b), secret) || strings.Contains(string(b), never[7:]) {
		t.Fatal("List shows a secret")
	}
	if err := Delete(ctx, cs, id); err != nil {
		t.Fatal(err)
	}
	if err := Delete(ctx, cs, id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v, want ErrNotFound", err)
	}
	if err := Delete(ctx, cs, "BAD"); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("bad id: %v", err)
	}
	if list, _ := List(ctx, cs, now); len(list) != 1 || list[0].ID != never[:6] {
		t.Fatalf("after delete: %+v", list)
	}
}

func TestSpecValidate(t *testing.T) {
	for name, s := range map[string]Spec{
		"negative ttl":  {TTL: -time.Second},
		"tiny ttl":      {TTL: time.Millisecond},
		"bad group":     {Groups: []string{"system:masters"}},
		"two-line desc": {Description: "a\nb"},
	} {
		if err := s.Validate(); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	for name, s := range map[string]Spec{"no expiry": {}, "a second": {TTL: time.Second}, "group": {Groups: []string{"system:bootstrappers:x"}}} {
		if err := s.Validate(); err != nil {
			t.Errorf("%s refused: %v", name, err)
		}
	}
}

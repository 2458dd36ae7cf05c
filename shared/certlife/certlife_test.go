package certlife

import (
	"crypto/x509"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestRenewalDueAtAThirdOfTheValidity(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, lifetime := range []time.Duration{DefaultLifetime, 3 * time.Minute} {
		nb, na := Validity(now, lifetime)
		cert := &x509.Certificate{NotBefore: nb, NotAfter: na}
		left := na.Sub(RenewAt(cert))
		share := float64(left) / float64(na.Sub(nb))
		if share < 0.32 || share > 0.33 {
			t.Errorf("lifetime %s: renewed with %s left (%.3f of the validity), want 120/365", lifetime, left, share)
		}
		if Due(cert, now) {
			t.Errorf("lifetime %s: due when just issued", lifetime)
		}
		if !Due(cert, RenewAt(cert)) || Due(cert, RenewAt(cert).Add(-time.Second)) {
			t.Errorf("lifetime %s: Due does not switch at RenewAt", lifetime)
		}
		if every := CheckEvery(lifetime); every > left/4 || every < time.Second {
			t.Errorf("lifetime %s: checked every %s, with %s to renew in", lifetime, every, left)
		}
	}
	if left := DefaultLifetime - (DefaultLifetime / 365 * 245); left != 120*24*time.Hour {
		t.Fatalf("a year's certificate is renewed with %s left, want 120 days", left)
	}
}

func TestTestLifetimeEnv(t *testing.T) {
	for v, ok := range map[string]bool{"": true, "90s": true, "10s": false, "soon": false, "9000h": false} {
		t.Setenv(TestLifetimeEnv, v)
		lifetime = onceLifetime()
		d, err := Lifetime()
		if (err == nil) != ok {
			t.Errorf("%q: lifetime %s, error %v; want ok=%v", v, d, err, ok)
		}
		if v == "" && (d != DefaultLifetime || Overridden()) {
			t.Errorf("unset: %s, overridden %v", d, Overridden())
		}
		if v == "90s" && (d != 90*time.Second || !Overridden()) {
			t.Errorf("90s: %s, overridden %v", d, Overridden())
		}
	}
}

// TestSetupWarnsOnce: a server runs its own agent, and both call Setup.
func TestSetupWarnsOnce(t *testing.T) {
	t.Setenv(TestLifetimeEnv, "90s")
	lifetime = onceLifetime()
	t.Cleanup(func() { lifetime = onceLifetime() })
	var out strings.Builder
	log := slog.New(slog.NewTextHandler(&out, nil))
	for range 2 {
		if err := Setup(log); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(out.String(), "test-only certificate lifetime"); n != 1 {
		t.Fatalf("%d warnings, want 1:\n%s", n, out.String())
	}
}

// Package certlife holds the lifetime rules of the leaf certificates kedge
// issues, shared by the servers that issue and renew them and the agents
// that renew theirs: how long a certificate is valid, when it is due for
// renewal, and how often to check.
//
// A leaf certificate is valid for a year and renewed when a third of its
// validity (120 days) or less remains, so a renewal that fails keeps being
// retried for four months before anything expires.
package certlife

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"k8s.io/client-go/transport"
)

const (
	// DefaultLifetime is the validity of a leaf certificate.
	DefaultLifetime = 365 * 24 * time.Hour
	// renewShare is the share of a certificate's validity left when it is
	// renewed: 120 of 365 days.
	renewNum, renewDen = 120, 365

	// TestLifetimeEnv names a test-only setting: a Go duration that replaces
	// DefaultLifetime for every leaf certificate this process issues, so that
	// tests can watch renewals happen. It is not a flag and not documented
	// for users; a process that uses it says so in its log.
	TestLifetimeEnv = "KEDGE_TEST_CERT_LIFETIME"

	maxCheckEvery = time.Minute
	minCheckEvery = time.Second
)

var lifetime = onceLifetime()

func onceLifetime() func() (time.Duration, error) {
	return sync.OnceValues(readLifetime)
}

func readLifetime() (time.Duration, error) {
	v := os.Getenv(TestLifetimeEnv)
	if v == "" {
		return DefaultLifetime, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 30*time.Second || d > DefaultLifetime {
		return 0, fmt.Errorf("$%s=%q: want a duration from 30s to %s", TestLifetimeEnv, v, DefaultLifetime)
	}
	return d, nil
}

// Lifetime is the validity of the leaf certificates this process issues:
// DefaultLifetime unless TestLifetimeEnv says otherwise. It fails on a bad
// TestLifetimeEnv.
func Lifetime() (time.Duration, error) { return lifetime() }

// Overridden reports whether TestLifetimeEnv is in effect.
func Overridden() bool {
	d, err := lifetime()
	return err == nil && d != DefaultLifetime
}

// Validity returns a new certificate's NotBefore and NotAfter when issued
// at now: backdated by an hour (at most a hundredth of the lifetime) for
// clocks that are a little behind.
func Validity(now time.Time, lifetime time.Duration) (notBefore, notAfter time.Time) {
	return now.Add(-min(time.Hour, lifetime/100)), now.Add(lifetime)
}

// RenewAt is when cert is due for renewal: when a third of its validity
// (120 of 365 days) is left.
func RenewAt(cert *x509.Certificate) time.Time {
	validity := cert.NotAfter.Sub(cert.NotBefore)
	return cert.NotAfter.Add(-validity / renewDen * renewNum)
}

// Due reports whether cert should be renewed at now.
func Due(cert *x509.Certificate, now time.Time) bool {
	return !now.Before(RenewAt(cert))
}

// CheckEvery is how often to look for certificates due for renewal with
// the given lifetime: every minute, or more often for short test lifetimes.
func CheckEvery(lifetime time.Duration) time.Duration {
	return max(minCheckEvery, min(maxCheckEvery, lifetime/renewDen*renewNum/8))
}

// warned makes Setup's warning once per process (a server runs an agent too).
var warned sync.Once

// Setup checks TestLifetimeEnv and, when it is in effect, says so in the
// log (once per process) and makes client-go read certificate files again
// as often as they are checked for renewal (it does every five minutes
// otherwise). Call it before making any client.
func Setup(log *slog.Logger) error {
	d, err := lifetime()
	if err != nil || !Overridden() {
		return err
	}
	warned.Do(func() { log.Warn("test-only certificate lifetime in effect", "env", TestLifetimeEnv, "lifetime", d) })
	transport.CertCallbackRefreshDuration = min(transport.CertCallbackRefreshDuration, CheckEvery(d))
	return nil
}

package secretsencrypt

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 12, 6, 10, 30, 0, 0, time.UTC)

func TestRenderParseRoundTrip(t *testing.T) {
	a, err := NewKey(now, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewKey(now, []string{a.Name})
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != "kedge-20261206T103000Z" || b.Name != "kedge-20261206T103000Z-2" {
		t.Fatalf("names %q %q", a.Name, b.Name)
	}
	if raw, err := base64.StdEncoding.DecodeString(a.Secret); err != nil || len(raw) != 32 || a.Secret == b.Secret {
		t.Fatalf("key is not 32 fresh random bytes: %d bytes, %v", len(raw), err)
	}
	for _, c := range []Config{{Keys: []Key{a}}, {Keys: []Key{b, a}}, {Keys: []Key{a}, IdentityFirst: true}} {
		data := Render(c)
		got, err := Parse(data)
		if err != nil {
			t.Fatalf("%s: %v", data, err)
		}
		if !slices.Equal(got.Keys, c.Keys) || got.IdentityFirst != c.IdentityFirst {
			t.Errorf("round trip: %+v, want %+v", got, c)
		}
		if !bytes.Equal(Render(got), data) {
			t.Error("Render is not stable")
		}
	}
	data := string(Render(Config{Keys: []Key{a}}))
	if strings.Index(data, `"secretbox"`) > strings.Index(data, `"identity"`) {
		t.Errorf("identity must come last when encryption is on:\n%s", data)
	}
}

func TestParseRefusesOtherConfigs(t *testing.T) {
	for name, data := range map[string]string{
		"not yaml":        "{",
		"other kind":      `{"apiVersion":"v1","kind":"ConfigMap"}`,
		"other resources": `{"apiVersion":"apiserver.config.k8s.io/v1","kind":"EncryptionConfiguration","resources":[{"resources":["configmaps"],"providers":[{"identity":{}}]}]}`,
		"aescbc":          `{"apiVersion":"apiserver.config.k8s.io/v1","kind":"EncryptionConfiguration","resources":[{"resources":["secrets"],"providers":[{"aescbc":{"keys":[{"name":"k","secret":"x"}]}},{"identity":{}}]}]}`,
		"no identity":     `{"apiVersion":"apiserver.config.k8s.io/v1","kind":"EncryptionConfiguration","resources":[{"resources":["secrets"],"providers":[{"secretbox":{"keys":[{"name":"k","secret":"x"}]}}]}]}`,
		"no keys":         `{"apiVersion":"apiserver.config.k8s.io/v1","kind":"EncryptionConfiguration","resources":[{"resources":["secrets"],"providers":[{"secretbox":{"keys":[]}},{"identity":{}}]}]}`,
		"unknown field":   `{"apiVersion":"apiserver.config.k8s.io/v1","kind":"EncryptionConfiguration","resources":[],"extra":1}`,
	} {
		if _, err := Parse([]byte(data)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestEnsure: a new key on the first start with the flag, the same file on
// later starts, identity moved first (keys kept) when the flag goes off
// and back when it comes on, nothing without the flag and without a file.
func TestEnsure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "server", "cred", "encryption-config.json")
	if got, err := Ensure(t.Context(), path, false, now); err != nil || got != "" {
		t.Fatalf("off without a file: %q, %v", got, err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("off without a file wrote one: %v", err)
	}
	if got, err := Ensure(t.Context(), path, true, now); err != nil || got != path {
		t.Fatalf("on: %q, %v", got, err)
	}
	first := read(t, path)
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	if _, err := Ensure(t.Context(), path, true, now.Add(time.Hour)); err != nil || !bytes.Equal(read(t, path), first) {
		t.Fatalf("a second start changed the file: %v", err)
	}
	c, _ := Parse(first)
	if got, err := Ensure(t.Context(), path, false, now); err != nil || got != path {
		t.Fatalf("off after on: %q, %v (the keys must still reach the apiserver)", got, err)
	}
	off, _ := Parse(read(t, path))
	if !off.IdentityFirst || !slices.Equal(off.Keys, c.Keys) || off.Enabled() {
		t.Fatalf("off after on: %+v, want identity first with the same keys", off)
	}
	if _, err := Ensure(t.Context(), path, true, now); err != nil || !bytes.Equal(read(t, path), first) {
		t.Fatalf("on again: %v, file differs from the first", err)
	}
}

// TestEnsureRefusesADamagedFile: one clear error, and the file (the only
// copy of the keys) is left exactly as it was.
func TestEnsureRefusesADamagedFile(t *testing.T) {
	dir := t.TempDir()
	good := Render(Config{Keys: []Key{{Name: "k1", Secret: base64.StdEncoding.EncodeToString(make([]byte, 32))}}})
	for name, data := range map[string][]byte{
		"truncated":     good[:len(good)/2],
		"empty":         {},
		"short key":     Render(Config{Keys: []Key{{Name: "k1", Secret: base64.StdEncoding.EncodeToString(make([]byte, 16))}}}),
		"not base64":    Render(Config{Keys: []Key{{Name: "k1", Secret: "!!!"}}}),
		"duplicate key": Render(Config{Keys: []Key{{Name: "k1", Secret: base64.StdEncoding.EncodeToString(make([]byte, 32))}, {Name: "k1", Secret: base64.StdEncoding.EncodeToString(make([]byte, 32))}}}),
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".json")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, enabled := range []bool{true, false} {
			_, err := Ensure(t.Context(), path, enabled, now)
			if err == nil {
				t.Errorf("%s (enabled %v): accepted", name, enabled)
				continue
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "does not overwrite") {
				t.Errorf("%s: error does not name the file and what to do: %v", name, err)
			}
			if !bytes.Equal(read(t, path), data) {
				t.Errorf("%s: the file was changed", name)
			}
		}
	}
}

func TestParseConfigInfo(t *testing.T) {
	body := []byte(`# HELP apiserver_encryption_config_controller_last_config_info [ALPHA] Information about the last applied encryption configuration with hash as label, split by apiserver identity.
# TYPE apiserver_encryption_config_controller_last_config_info gauge
apiserver_encryption_config_controller_last_config_info{apiserver_id_hash="sha256:aaaa",hash="sha256:bbbb"} 1
apiserver_encryption_config_controller_automatic_reloads_total{apiserver_id_hash="sha256:aaaa",status="success"} 2
`)
	if got := parseConfigInfo(body); got != "sha256:bbbb" {
		t.Errorf("hash %q, want sha256:bbbb", got)
	}
	if got := parseConfigInfo([]byte("apiserver_request_total{code=\"200\"} 3\n")); got != "" {
		t.Errorf("no config: %q", got)
	}
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLockRefusesASecondRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "encryption-config.json.lock")
	unlock, err := lock(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock(path); err == nil || !strings.Contains(err.Error(), "another") {
		t.Fatalf("second lock: %v", err)
	}
	unlock()
	again, err := lock(path)
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	again()
}

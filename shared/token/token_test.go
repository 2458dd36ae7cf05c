package token

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const secret = "0123456789abcdef0123"

func TestParseRoundTrip(t *testing.T) {
	hash := CAHash([]byte("ca bundle"))
	for _, tok := range []Token{
		{CAHash: hash, Username: ServerUser, Secret: secret},
		{CAHash: hash, Username: NodeUser, Secret: secret},
	} {
		got, err := Parse(tok.String())
		if err != nil {
			t.Fatalf("Parse(%q): %v", tok.String(), err)
		}
		if got != tok {
			t.Fatalf("round trip = %+v, want %+v", got, tok)
		}
		if !strings.HasPrefix(tok.String(), "K10"+hash+"::") {
			t.Fatalf("String() = %q lacks K10<hash>:: prefix", tok.String())
		}
	}
}

func TestParseBareSecret(t *testing.T) {
	got, err := Parse("  " + secret + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if got.CAHash != "" || got.Secret != secret || got.Username != ServerUser {
		t.Fatalf("got %+v", got)
	}
}

func TestParseRejectsMalformed(t *testing.T) {
	hash := CAHash([]byte("x"))
	cases := map[string]string{
		"empty":            "",
		"short secret":     "abc",
		"secret colon":     "abcdefghijklmnop:q",
		"no separator":     "K10" + hash + "server:" + secret,
		"short hash":       "K10abcd::server:" + secret,
		"non-hex hash":     "K10" + strings.Repeat("z", 64) + "::server:" + secret,
		"no user":          "K10" + hash + "::" + secret,
		"unknown user":     "K10" + hash + "::admin:" + secret,
		"empty secret":     "K10" + hash + "::server:",
		"whitespace in it": "K10" + hash + "::server:" + secret + " x",
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(in)
			if err == nil {
				t.Fatalf("Parse(%q) succeeded", in)
			}
			if in != "" && strings.Contains(err.Error(), secret) {
				t.Fatalf("error leaks the secret: %v", err)
			}
		})
	}
}

func TestEnsureGeneratesOnceAndReuses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "server", "token")
	ca := []byte("ca-1")
	first, err := Ensure(path, Token{}, ca)
	if err != nil {
		t.Fatal(err)
	}
	if first.CAHash != CAHash(ca) || len(first.Secret) < minSecretLen {
		t.Fatalf("generated %+v", first)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("token mode = %v, want 0600", st.Mode().Perm())
	}
	again, err := Ensure(path, Token{}, ca)
	if err != nil || again != first {
		t.Fatalf("second Ensure = %+v, %v; want %+v", again, err, first)
	}
}

func TestEnsureGivenToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	ca := []byte("ca")
	got, err := Ensure(path, Token{Secret: secret}, ca)
	if err != nil || got.Secret != secret || got.CAHash != CAHash(ca) {
		t.Fatalf("Ensure = %+v, %v", got, err)
	}
	before, _ := os.ReadFile(path)
	if _, err := Ensure(path, Token{Secret: secret + "x"}, ca); err == nil {
		t.Fatal("a different --token was accepted")
	}
	if _, err := Ensure(path, Token{CAHash: CAHash([]byte("other")), Secret: secret}, ca); err == nil {
		t.Fatal("a token pinning another CA was accepted")
	}
	after, _ := os.ReadFile(path)
	if string(before) != string(after) {
		t.Fatal("rejected token changed the stored file")
	}
}

func TestReadMissingAndCorrupt(t *testing.T) {
	dir := t.TempDir()
	if _, err := Read(filepath.Join(dir, "nope")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("K10zz::"), 0o600)
	if _, err := Ensure(bad, Token{}, []byte("ca")); err == nil {
		t.Fatal("corrupt token file accepted")
	}
	if b, _ := os.ReadFile(bad); string(b) != "K10zz::" {
		t.Fatal("corrupt token file was overwritten")
	}
}

func TestEnsureAgent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent-token")
	ca := []byte("ca")
	if got, err := EnsureAgent(path, Token{}, ca); err != nil || got.Secret != "" {
		t.Fatalf("no agent token: %+v %v", got, err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("an agent token was generated")
	}
	got, err := EnsureAgent(path, Token{Secret: secret}, ca)
	if err != nil || got.Username != NodeUser || got.CAHash != CAHash(ca) {
		t.Fatalf("given: %+v %v", got, err)
	}
	if again, err := EnsureAgent(path, Token{}, ca); err != nil || again != got {
		t.Fatalf("stored: %+v %v", again, err)
	}
	if _, err := EnsureAgent(path, Token{Secret: secret + "x"}, ca); err == nil {
		t.Fatal("a different --agent-token was accepted")
	}
}

const bootstrapToken = "abcdef.0123456789abcdef"

func TestParseBootstrapToken(t *testing.T) {
	hash := CAHash([]byte("ca bundle"))
	full := "K10" + hash + "::" + bootstrapToken
	got, err := Parse(full)
	if err != nil {
		t.Fatal(err)
	}
	want := Token{CAHash: hash, Username: BootstrapUser, Secret: bootstrapToken}
	if got != want || !got.IsBootstrap() || got.BootstrapID() != "abcdef" {
		t.Fatalf("Parse(full) = %+v, want %+v", got, want)
	}
	if got.String() != full {
		t.Fatalf("String() = %q, want %q", got.String(), full)
	}
	bare, err := Parse(bootstrapToken + "\n")
	if err != nil || bare != (Token{Username: BootstrapUser, Secret: bootstrapToken}) {
		t.Fatalf("Parse(bare) = %+v, %v", bare, err)
	}
	// Other tokens are not bootstrap tokens and have no id.
	for _, s := range []string{secret, "K10" + hash + "::node:" + secret, "K10" + hash + "::server:" + bootstrapToken} {
		tok, err := Parse(s)
		if err != nil || tok.IsBootstrap() || tok.BootstrapID() != "" {
			t.Fatalf("Parse(%q) = %+v, %v; want a non-bootstrap token", s, tok, err)
		}
	}
}

func TestParseRejectsMalformedBootstrapTokens(t *testing.T) {
	hash := CAHash([]byte("x"))
	for name, creds := range map[string]string{
		"upper case id":  "ABCDEF.0123456789abcdef",
		"short id":       "abcde.0123456789abcdef",
		"short secret":   "abcdef.0123456789abcde",
		"long secret":    "abcdef.0123456789abcdef0",
		"bad character":  "abcdef.0123456789abcde_",
		"two dots":       "abc.ef.0123456789abcdef",
		"missing secret": "abcdef.",
	} {
		t.Run(name, func(t *testing.T) {
			if tok, err := Parse("K10" + hash + "::" + creds); err == nil {
				t.Fatalf("Parse accepted %q as %+v", creds, tok)
			}
		})
	}
}

func TestServerTokensAreNeverBootstrapTokens(t *testing.T) {
	dir := t.TempDir()
	ca := []byte("ca")
	boot := Token{Username: BootstrapUser, Secret: bootstrapToken}
	if _, err := Ensure(filepath.Join(dir, "token"), boot, ca); err == nil {
		t.Fatal("Ensure stored a bootstrap token as the server token")
	}
	if _, err := os.Stat(filepath.Join(dir, "token")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a refused token was written")
	}
	if _, err := EnsureAgent(filepath.Join(dir, "agent-token"), boot, ca); err == nil {
		t.Fatal("EnsureAgent stored a bootstrap token as the agent token")
	}
	stored := filepath.Join(dir, "stored")
	os.WriteFile(stored, []byte(bootstrapToken+"\n"), 0o600)
	if _, err := Ensure(stored, Token{}, ca); err == nil {
		t.Fatal("a bootstrap token in the server token file was accepted")
	}
}

// TestReplaceKeepsRestartsWorking: after a rotation a config file may still
// name the old token; Ensure accepts it (returning the stored one) but no
// other token, and the old secret itself is not kept.
func TestReplaceKeepsRestartsWorking(t *testing.T) {
	path := filepath.Join(t.TempDir(), "server", "token")
	ca := []byte("ca")
	old, err := Ensure(path, Token{Secret: secret}, ca)
	if err != nil {
		t.Fatal(err)
	}
	next := Token{CAHash: old.CAHash, Username: ServerUser, Secret: "rotated-secret-0123456789"}
	if err := Replace(path, next); err != nil {
		t.Fatal(err)
	}
	if err := Replace(path, next); err != nil { // idempotent
		t.Fatal(err)
	}
	if got, err := Ensure(path, Token{Secret: secret}, ca); err != nil || got != next {
		t.Fatalf("Ensure with the replaced --token = %+v, %v; want the stored one", got, err)
	}
	if got, err := Ensure(path, Token{Secret: next.Secret}, ca); err != nil || got != next {
		t.Fatalf("Ensure with the new --token = %+v, %v", got, err)
	}
	if _, err := Ensure(path, Token{Secret: "never-the-token-0123456789"}, ca); err == nil {
		t.Fatal("a token that was never the server token was accepted")
	}
	b, err := os.ReadFile(path + ".replaced")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), secret) || strings.Count(string(b), "\n") != 1 {
		t.Fatalf("replaced list %q: want one hash line and no secret", b)
	}
	if st, _ := os.Stat(path + ".replaced"); st.Mode().Perm() != 0o600 {
		t.Fatalf("replaced list mode %v", st.Mode().Perm())
	}
}

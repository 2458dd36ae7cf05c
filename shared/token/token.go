// Package token generates, parses and stores kedge join tokens.
//
// The full form is K10<sha256 hex of the CA bundle>::<username>:<secret>.
// The CA hash lets a joining node pin the server's CA before it trusts any
// TLS connection; the username says what the token may join as ("server"
// for servers and agents, "node" for agents only).
//
// A bootstrap token (kedge token create) has the form
// K10<hash>::<id>.<secret>, a Kubernetes bootstrap token (6 and 16
// characters [a-z0-9]) with no username: it joins agents only, until it
// expires. Its Token has Username BootstrapUser and Secret "<id>.<secret>".
package token

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	bootstraputil "k8s.io/cluster-bootstrap/token/util"

	"github.com/kedge/kedge/shared/atomicfile"
)

const (
	prefix = "K10"
	// ServerUser is the username of a token that may join servers and agents.
	ServerUser = "server"
	// NodeUser is the username of a token that may join agents only.
	NodeUser = "node"
	// BootstrapUser is the username of a bootstrap token (agents only,
	// with a lifetime). It is sent as the Basic auth user; it never
	// appears in the token's text.
	BootstrapUser = "bootstrap"

	minSecretLen = 16
)

// Token is a parsed join token. CAHash is empty for a short (bare secret) token.
type Token struct {
	CAHash   string
	Username string
	Secret   string
}

// String renders the token in its full form when it has a CA hash, or as the
// bare secret otherwise. It contains the secret: never log it.
func (t Token) String() string {
	if t.CAHash == "" {
		return t.Secret
	}
	if t.IsBootstrap() {
		return prefix + t.CAHash + "::" + t.Secret
	}
	return prefix + t.CAHash + "::" + t.Username + ":" + t.Secret
}

// IsBootstrap reports whether t is a bootstrap token, which joins agents
// only and never servers.
func (t Token) IsBootstrap() bool { return t.Username == BootstrapUser }

// BootstrapID returns the id of a bootstrap token ("" for other tokens).
// The id is public (it names the token's Secret); the rest is not.
func (t Token) BootstrapID() string {
	if !t.IsBootstrap() {
		return ""
	}
	id, _, _ := strings.Cut(t.Secret, ".")
	return id
}

// CAHash returns the lowercase hex sha256 of a PEM CA bundle, as carried in a token.
func CAHash(caBundle []byte) string {
	sum := sha256.Sum256(caBundle)
	return hex.EncodeToString(sum[:])
}

func randomSecret() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate token secret: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// Parse accepts a full token (K10<hash>::<user>:<secret>), a full bootstrap
// token (K10<hash>::<id>.<secret>), a bare bootstrap token (<id>.<secret>)
// or a bare secret. Errors never contain the secret.
func Parse(s string) (Token, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Token{}, errors.New("token is empty")
	}
	if bootstraputil.IsValidBootstrapToken(s) {
		return Token{Username: BootstrapUser, Secret: s}, nil
	}
	if !strings.HasPrefix(s, prefix) {
		if err := validSecret(s); err != nil {
			return Token{}, err
		}
		return Token{Username: ServerUser, Secret: s}, nil
	}
	hash, creds, ok := strings.Cut(strings.TrimPrefix(s, prefix), "::")
	if !ok {
		return Token{}, errors.New("token starts with K10 but has no '::' after the CA hash")
	}
	if len(hash) != sha256.Size*2 {
		return Token{}, fmt.Errorf("token CA hash has %d characters, want %d hex digits", len(hash), sha256.Size*2)
	}
	if _, err := hex.DecodeString(hash); err != nil {
		return Token{}, errors.New("token CA hash is not hexadecimal")
	}
	if bootstraputil.IsValidBootstrapToken(creds) {
		return Token{CAHash: strings.ToLower(hash), Username: BootstrapUser, Secret: creds}, nil
	}
	user, secret, ok := strings.Cut(creds, ":")
	if !ok {
		return Token{}, errors.New("token has no '<user>:<secret>' (or bootstrap '<id>.<secret>', 6 and 16 characters a-z0-9) after '::'")
	}
	if user != ServerUser && user != NodeUser {
		return Token{}, fmt.Errorf("token user %q is not %q or %q", user, ServerUser, NodeUser)
	}
	if err := validSecret(secret); err != nil {
		return Token{}, err
	}
	return Token{CAHash: strings.ToLower(hash), Username: user, Secret: secret}, nil
}

func validSecret(s string) error {
	if len(s) < minSecretLen {
		return fmt.Errorf("token secret is shorter than %d characters", minSecretLen)
	}
	if strings.ContainsAny(s, ": \t\r\n") {
		return errors.New("token secret contains ':' or whitespace")
	}
	return nil
}

// Read loads and parses a token file. A missing file returns an error that
// satisfies errors.Is(err, os.ErrNotExist).
func Read(path string) (Token, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Token{}, err
	}
	t, err := Parse(string(b))
	if err != nil {
		return Token{}, fmt.Errorf("token file %s: %w", path, err)
	}
	return t, nil
}

// Write stores the token at path with mode 0600, atomically.
func Write(path string, t Token) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(path, []byte(t.String()+"\n"), 0o600)
}

// Ensure returns the server token stored at path, creating it on first start.
// A token given by the user (given.Secret != "") must match a stored one,
// or be one that kedge token rotate replaced (see Replace: a config file
// that still names the old token does not stop a restart; the stored one
// is returned); on first start it is stored with the CA hash filled in. The CA hash is always
// that of caBundle; a token whose hash names another CA is rejected.
func Ensure(path string, given Token, caBundle []byte) (Token, error) {
	hash := CAHash(caBundle)
	if given.IsBootstrap() {
		return Token{}, errors.New("--token is a bootstrap token, which joins agents only; a server needs the server token")
	}
	if given.CAHash != "" && given.CAHash != hash {
		return Token{}, errors.New("--token carries a CA hash that does not match this server's CA")
	}
	stored, err := Read(path)
	switch {
	case err == nil:
		if stored.IsBootstrap() {
			return Token{}, fmt.Errorf("stored token %s is a bootstrap token, not a server token", path)
		}
		if stored.CAHash != "" && stored.CAHash != hash {
			return Token{}, fmt.Errorf("stored token %s names a different CA than the one in the data dir", path)
		}
		if given.Secret != "" && given.Secret != stored.Secret && !WasReplaced(path, given.Secret) {
			return Token{}, fmt.Errorf("--token differs from the token stored in %s; the server token cannot be changed this way (use kedge token rotate)", path)
		}
		stored.CAHash, stored.Username = hash, ServerUser
		return stored, nil
	case errors.Is(err, os.ErrNotExist):
		t := Token{CAHash: hash, Username: ServerUser, Secret: given.Secret}
		if t.Secret == "" {
			if t.Secret, err = randomSecret(); err != nil {
				return Token{}, err
			}
		}
		if err := Write(path, t); err != nil {
			return Token{}, fmt.Errorf("store server token: %w", err)
		}
		return t, nil
	default:
		return Token{}, err
	}
}

// EnsureAgent returns the agent token: the one given (stored at path on first
// use; it must match a stored one), else the stored one, else none (zero
// Token). Agent tokens are never generated: without one, agents use the
// server token.
func EnsureAgent(path string, given Token, caBundle []byte) (Token, error) {
	hash := CAHash(caBundle)
	if given.IsBootstrap() {
		return Token{}, errors.New("--agent-token is a bootstrap token; the agent token is a static secret (bootstrap tokens are made with kedge token create)")
	}
	stored, err := Read(path)
	switch {
	case err == nil:
		if given.Secret != "" && given.Secret != stored.Secret && !WasReplaced(path, given.Secret) {
			return Token{}, fmt.Errorf("--agent-token differs from the token stored in %s", path)
		}
		return Token{CAHash: hash, Username: NodeUser, Secret: stored.Secret}, nil
	case !errors.Is(err, os.ErrNotExist):
		return Token{}, err
	case given.Secret == "":
		return Token{}, nil
	}
	if given.CAHash != "" && given.CAHash != hash {
		return Token{}, errors.New("--agent-token carries a CA hash that does not match this server's CA")
	}
	t := Token{CAHash: hash, Username: NodeUser, Secret: given.Secret}
	if err := Write(path, t); err != nil {
		return Token{}, fmt.Errorf("store agent token: %w", err)
	}
	return t, nil
}

// replacedFile lists, next to a server token file, the sha256 (hex) of each
// secret that Replace replaced, one a line.
func replacedFile(path string) string { return path + ".replaced" }

func secretHash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Replace stores next at path (see Write), first recording the hash of the
// secret stored there before, if any and different, so that Ensure still
// accepts it as --token. The secrets themselves are not kept.
func Replace(path string, next Token) error {
	if prev, err := Read(path); err == nil && prev.Secret != next.Secret && !WasReplaced(path, prev.Secret) {
		f, err := os.OpenFile(replacedFile(path), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("record the replaced token: %w", err)
		}
		_, werr := fmt.Fprintln(f, secretHash(prev.Secret))
		if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
			return fmt.Errorf("record the replaced token: %w", err)
		}
	}
	return Write(path, next)
}

// WasReplaced reports whether secret was the server token at path before
// Replace replaced it.
func WasReplaced(path, secret string) bool {
	b, err := os.ReadFile(replacedFile(path))
	if err != nil {
		return false
	}
	want := secretHash(secret)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(line) == want {
			return true
		}
	}
	return false
}

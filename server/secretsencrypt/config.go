// Package secretsencrypt keeps the encryption of Secrets at rest: the
// kube-apiserver encryption provider config in the data dir (one secretbox
// provider holding kedge's keys, and identity so that Secrets stored in
// plain text stay readable), its check at server start, the status of the
// running apiserver, and key rotation with re-encryption of every Secret.
//
// secretbox (XSalsa20-Poly1305) is, of the providers with a local key, the
// one the Kubernetes docs rate "strong" without a condition: they do not
// recommend aescbc (CBC's padding-oracle weakness), and aesgcm's random
// nonces need a key rotation every 200k writes. kedge keeps
// the key in a file, not in a KMS, so its protection is the file's (0600,
// root): it keeps Secrets out of the database, its copies and snapshots
// taken without the data dir's cred/ directory, not from root on the host.
package secretsencrypt

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	apiserverv1 "k8s.io/apiserver/pkg/apis/apiserver/v1"
	"k8s.io/apiserver/pkg/server/options/encryptionconfig"
	"sigs.k8s.io/yaml"

	"github.com/kedge/kedge/shared/atomicfile"
)

// Provider is the encryption provider kedge writes Secrets with.
const Provider = "secretbox"

// Resource is what kedge encrypts.
const Resource = "secrets"

// Key is one secretbox key: its name (in every stored value's prefix,
// k8s:enc:secretbox:v1:<name>:) and its 32 bytes, base64.
type Key struct {
	Name   string
	Secret string
}

// Config is the content of the encryption provider config kedge manages.
type Config struct {
	// Keys are the secretbox keys; the first one encrypts when encryption
	// is on, every one decrypts.
	Keys []Key
	// IdentityFirst means encryption is off (--secrets-encryption was
	// turned off): new writes are plain text, and the keys only read
	// Secrets that are still encrypted.
	IdentityFirst bool
}

// Enabled reports whether Secrets are written encrypted.
func (c Config) Enabled() bool { return !c.IdentityFirst && len(c.Keys) > 0 }

// KeyNames are the keys' names, the write key first.
func (c Config) KeyNames() []string {
	var names []string
	for _, k := range c.Keys {
		names = append(names, k.Name)
	}
	return names
}

// Render returns the file's content: apiserver.config.k8s.io/v1
// EncryptionConfiguration as indented JSON, the same bytes for the same
// Config.
func Render(c Config) []byte {
	var keys []apiserverv1.Key
	for _, k := range c.Keys {
		keys = append(keys, apiserverv1.Key{Name: k.Name, Secret: k.Secret})
	}
	box := apiserverv1.ProviderConfiguration{Secretbox: &apiserverv1.SecretboxConfiguration{Keys: keys}}
	identity := apiserverv1.ProviderConfiguration{Identity: &apiserverv1.IdentityConfiguration{}}
	providers := []apiserverv1.ProviderConfiguration{box, identity}
	if c.IdentityFirst {
		providers = []apiserverv1.ProviderConfiguration{identity, box}
	}
	ec := apiserverv1.EncryptionConfiguration{Resources: []apiserverv1.ResourceConfiguration{{Resources: []string{Resource}, Providers: providers}}}
	ec.APIVersion, ec.Kind = "apiserver.config.k8s.io/v1", "EncryptionConfiguration"
	out, err := json.MarshalIndent(ec, "", "  ")
	if err != nil {
		panic(err) // plain structs of strings always marshal
	}
	return append(out, '\n')
}

// Parse reads a file Render wrote. It refuses anything else: other
// resources, other providers, a secretbox provider without keys.
func Parse(data []byte) (Config, error) {
	var ec apiserverv1.EncryptionConfiguration
	if err := yaml.UnmarshalStrict(data, &ec); err != nil {
		return Config{}, fmt.Errorf("not an EncryptionConfiguration: %w", err)
	}
	if ec.APIVersion != "apiserver.config.k8s.io/v1" || ec.Kind != "EncryptionConfiguration" {
		return Config{}, fmt.Errorf("apiVersion %q kind %q, want apiserver.config.k8s.io/v1 EncryptionConfiguration", ec.APIVersion, ec.Kind)
	}
	if len(ec.Resources) != 1 || !slices.Equal(ec.Resources[0].Resources, []string{Resource}) {
		return Config{}, fmt.Errorf("want one resources entry for %q only (the file kedge writes)", Resource)
	}
	var c Config
	var box, identity int
	for i, p := range ec.Resources[0].Providers {
		switch {
		case p.Secretbox != nil && p.Identity == nil && p.AESCBC == nil && p.AESGCM == nil && p.KMS == nil:
			box++
			for _, k := range p.Secretbox.Keys {
				c.Keys = append(c.Keys, Key{Name: k.Name, Secret: k.Secret})
			}
		case p.Identity != nil && p.Secretbox == nil && p.AESCBC == nil && p.AESGCM == nil && p.KMS == nil:
			identity++
			c.IdentityFirst = i == 0
		default:
			return Config{}, errors.New("providers must be one secretbox and one identity (the file kedge writes)")
		}
	}
	if box != 1 || identity != 1 {
		return Config{}, errors.New("providers must be one secretbox and one identity (the file kedge writes)")
	}
	if len(c.Keys) == 0 {
		return Config{}, errors.New("the secretbox provider has no keys")
	}
	names := c.KeyNames()
	slices.Sort(names)
	if len(slices.Compact(names)) != len(c.Keys) {
		return Config{}, errors.New("two keys have the same name")
	}
	return c, nil
}

// Load reads, parses and checks the file at path as kube-apiserver will
// (upstream's loader, which also decodes every key). It never changes the
// file. It returns the file's bytes too, for their hash.
func Load(ctx context.Context, path string) (Config, []byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, nil, err
	}
	c, err := Parse(data)
	if err != nil {
		return Config{}, nil, fmt.Errorf("secrets encryption config %s: %w", path, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // releases the transformers upstream built for the check
	if _, err := encryptionconfig.LoadEncryptionConfig(ctx, path, true, "kedge"); err != nil {
		return Config{}, nil, fmt.Errorf("secrets encryption config %s: %w", path, err)
	}
	return c, data, nil
}

// Hash is how kube-apiserver names a config's content in its metric
// apiserver_encryption_config_controller_last_config_info{hash=...}.
func Hash(data []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(data)) }

// NewKey makes a key of 32 random bytes named after now (UTC), unlike
// every name in taken.
func NewKey(now time.Time, taken []string) (Key, error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return Key{}, fmt.Errorf("generate a key: %w", err)
	}
	base := "kedge-" + now.UTC().Format("20060102T150405Z")
	name := base
	for i := 2; slices.Contains(taken, name); i++ {
		name = fmt.Sprintf("%s-%d", base, i)
	}
	return Key{Name: name, Secret: base64.StdEncoding.EncodeToString(secret)}, nil
}

// Write writes c to path atomically, mode 0600.
func Write(path string, c Config) error {
	return atomicfile.Write(path, Render(c), 0o600)
}

// Ensure is called by the server at start, before kube-apiserver runs. It
// returns the path to pass as --encryption-provider-config, or "" when
// there is none (encryption was never on).
//
// With enabled and no file, it writes one with a new key. A file from an
// earlier start is checked and kept, keys and all; only the identity
// provider's place follows enabled: last when on, first when off, so that
// turning the flag off makes new writes plain text and keeps every Secret
// written while it was on readable. A file that does not parse or that
// kube-apiserver would refuse is an error, and is left as it is.
func Ensure(ctx context.Context, path string, enabled bool, now time.Time) (string, error) {
	c, data, err := Load(ctx, path)
	switch {
	case errors.Is(err, os.ErrNotExist) && !enabled:
		return "", nil
	case errors.Is(err, os.ErrNotExist):
		key, err := NewKey(now, nil)
		if err != nil {
			return "", err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return "", err
		}
		if err := Write(path, Config{Keys: []Key{key}}); err != nil {
			return "", fmt.Errorf("write secrets encryption config: %w", err)
		}
		return path, nil
	case err != nil:
		return "", fmt.Errorf("%w; kedge does not overwrite it: repair it or restore it (with its keys) from a snapshot", err)
	}
	want := c
	want.IdentityFirst = !enabled
	if out := Render(want); !bytes.Equal(out, data) {
		if err := atomicfile.Write(path, out, 0o600); err != nil {
			return "", fmt.Errorf("write secrets encryption config: %w", err)
		}
	} else if err := os.Chmod(path, 0o600); err != nil {
		return "", err
	}
	return path, nil
}

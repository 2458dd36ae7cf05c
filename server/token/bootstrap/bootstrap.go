// Package bootstrap keeps kedge's bootstrap tokens: Kubernetes bootstrap
// token Secrets (bootstrap-token-<id>, type bootstrap.kubernetes.io/token,
// in kube-system), made, listed and deleted through the API, and checked
// by the join API when an agent joins with one. Expired Secrets are
// removed by the controller-manager's token-cleaner; Authenticate checks
// the expiration itself, since the cleaner may lag.
package bootstrap

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
	bootstrapsecrets "k8s.io/cluster-bootstrap/util/secrets"
)

// MinTTL is the shortest lifetime a token may be given (0 means it never
// expires). It is short so that tests can watch a token expire.
const MinTTL = time.Second

var (
	// ErrNotFound means no bootstrap token has the id.
	ErrNotFound = errors.New("no such bootstrap token")
	// ErrRejected means a token may not join: unknown, expired, not for
	// authentication, or a wrong secret. Its text never holds the secret.
	ErrRejected = errors.New("bootstrap token rejected")
)

// Spec is a new token's settings.
type Spec struct {
	// TTL is its lifetime from creation; 0 means it never expires.
	TTL         time.Duration
	Description string
	// Groups are extra groups (system:bootstrappers:...) recorded in
	// auth-extra-groups, for the apiserver's bootstrap authenticator and
	// kubectl; kedge's join API gives every node the same identity.
	Groups []string
}

// Validate checks s without touching the API.
func (s Spec) Validate() error {
	if s.TTL < 0 || (s.TTL > 0 && s.TTL < MinTTL) {
		return fmt.Errorf("--ttl %s: want 0 (never expires) or at least %s", s.TTL, MinTTL)
	}
	if strings.ContainsAny(s.Description, "\r\n") {
		return errors.New("--description must be one line")
	}
	for _, g := range s.Groups {
		if err := bootstraputil.ValidateBootstrapGroupName(g); err != nil {
			return fmt.Errorf("--groups: %w", err)
		}
	}
	return nil
}

// ValidateID checks a token id (6 characters [a-z0-9]).
func ValidateID(id string) error {
	if !bootstraputil.IsValidBootstrapTokenID(id) {
		return fmt.Errorf("%q is not a bootstrap token id (6 characters a-z0-9, the part before the dot)", id)
	}
	return nil
}

// NewSecret returns the Secret of token "<id>.<secret>" with spec, made at now.
func NewSecret(tok string, spec Spec, now time.Time) (*corev1.Secret, error) {
	id, secret, ok := strings.Cut(tok, ".")
	if !ok || !bootstraputil.IsValidBootstrapToken(tok) {
		return nil, errors.New("not a bootstrap token")
	}
	data := map[string][]byte{
		bootstrapapi.BootstrapTokenIDKey:               []byte(id),
		bootstrapapi.BootstrapTokenSecretKey:           []byte(secret),
		bootstrapapi.BootstrapTokenUsageAuthentication: []byte("true"),
		bootstrapapi.BootstrapTokenUsageSigningKey:     []byte("true"),
	}
	if spec.TTL > 0 {
		data[bootstrapapi.BootstrapTokenExpirationKey] = []byte(now.Add(spec.TTL).UTC().Format(time.RFC3339))
	}
	if spec.Description != "" {
		data[bootstrapapi.BootstrapTokenDescriptionKey] = []byte(spec.Description)
	}
	if len(spec.Groups) > 0 {
		data[bootstrapapi.BootstrapTokenExtraGroupsKey] = []byte(strings.Join(spec.Groups, ","))
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: bootstraputil.BootstrapTokenSecretName(id), Namespace: metav1.NamespaceSystem},
		Type:       bootstrapapi.SecretTypeBootstrapToken,
		Data:       data,
	}, nil
}

// Create makes a new random token with spec and returns it as
// "<id>.<secret>". An id that is taken already is an error (nothing is
// overwritten).
func Create(ctx context.Context, client kubernetes.Interface, spec Spec, now time.Time) (string, error) {
	if err := spec.Validate(); err != nil {
		return "", err
	}
	tok, err := bootstraputil.GenerateBootstrapToken()
	if err != nil {
		return "", err
	}
	s, err := NewSecret(tok, spec, now)
	if err != nil {
		return "", err
	}
	if _, err := client.CoreV1().Secrets(metav1.NamespaceSystem).Create(ctx, s, metav1.CreateOptions{}); err != nil {
		return "", fmt.Errorf("create Secret %s/%s: %w", s.Namespace, s.Name, err)
	}
	return tok, nil
}

// Info is a token as List shows it; it never holds the secret.
type Info struct {
	ID string `json:"id"`
	// Expires is nil for a token that never expires.
	Expires     *time.Time `json:"expires,omitempty"`
	Expired     bool       `json:"expired"`
	Description string     `json:"description,omitempty"`
	Usages      []string   `json:"usages"`
	Groups      []string   `json:"groups,omitempty"`
}

// List returns the bootstrap tokens in kube-system, by id, as of now.
// Secrets of the type that are malformed are skipped.
func List(ctx context.Context, client kubernetes.Interface, now time.Time) ([]Info, error) {
	list, err := client.CoreV1().Secrets(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{
		FieldSelector: "type=" + string(bootstrapapi.SecretTypeBootstrapToken)})
	if err != nil {
		return nil, fmt.Errorf("list bootstrap token Secrets: %w", err)
	}
	out := []Info{}
	for i := range list.Items {
		s := &list.Items[i]
		id, ok := bootstrapsecrets.ParseName(s.Name)
		if !ok || s.Type != bootstrapapi.SecretTypeBootstrapToken || bootstrapsecrets.GetData(s, bootstrapapi.BootstrapTokenIDKey) != id {
			continue
		}
		info := Info{ID: id, Description: bootstrapsecrets.GetData(s, bootstrapapi.BootstrapTokenDescriptionKey), Usages: []string{}}
		if exp := bootstrapsecrets.GetData(s, bootstrapapi.BootstrapTokenExpirationKey); exp != "" {
			if t, err := time.Parse(time.RFC3339, exp); err == nil {
				info.Expires = &t
			}
			info.Expired = bootstrapsecrets.HasExpired(s, now)
		}
		for _, u := range bootstrapapi.KnownTokenUsages {
			if bootstrapsecrets.GetData(s, bootstrapapi.BootstrapTokenUsagePrefix+u) == "true" {
				info.Usages = append(info.Usages, u)
			}
		}
		if g := bootstrapsecrets.GetData(s, bootstrapapi.BootstrapTokenExtraGroupsKey); g != "" {
			info.Groups = strings.Split(g, ",")
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b Info) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Delete removes the token with id; a token that does not exist is
// ErrNotFound.
func Delete(ctx context.Context, client kubernetes.Interface, id string) error {
	if err := ValidateID(id); err != nil {
		return err
	}
	name := bootstraputil.BootstrapTokenSecretName(id)
	err := client.CoreV1().Secrets(metav1.NamespaceSystem).Delete(ctx, name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%w %q", ErrNotFound, id)
	}
	if err != nil {
		return fmt.Errorf("delete Secret %s/%s: %w", metav1.NamespaceSystem, name, err)
	}
	return nil
}

// Authenticator checks bootstrap tokens presented to the join API against
// their Secrets. It is safe for concurrent use.
type Authenticator struct {
	Client kubernetes.Interface
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Authenticate reports whether tok ("<id>.<secret>") may join a node now.
// It returns an error wrapping ErrRejected for a token that may not, and
// another error when the API cannot tell.
func (a *Authenticator) Authenticate(ctx context.Context, tok string) error {
	id, _, ok := strings.Cut(tok, ".")
	if !ok || !bootstraputil.IsValidBootstrapToken(tok) {
		return fmt.Errorf("%w: malformed", ErrRejected)
	}
	s, err := a.Client.CoreV1().Secrets(metav1.NamespaceSystem).Get(ctx, bootstraputil.BootstrapTokenSecretName(id), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%w: %s is unknown", ErrRejected, id)
	}
	if err != nil {
		return fmt.Errorf("read bootstrap token %s: %w", id, err)
	}
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	return Check(s, tok, now())
}

// Check reports whether s, a bootstrap token Secret, lets tok join at now:
// the Secret is of the bootstrap type, names the token's id, allows
// authentication, is not expired (an unparsable expiration counts as
// expired) and holds the same secret (compared in constant time).
func Check(s *corev1.Secret, tok string, now time.Time) error {
	id, secret, _ := strings.Cut(tok, ".")
	switch {
	case s.Type != bootstrapapi.SecretTypeBootstrapToken:
		return fmt.Errorf("%w: Secret %s is not of type %s", ErrRejected, s.Name, bootstrapapi.SecretTypeBootstrapToken)
	case bootstrapsecrets.GetData(s, bootstrapapi.BootstrapTokenIDKey) != id:
		return fmt.Errorf("%w: Secret %s does not name token %s", ErrRejected, s.Name, id)
	case bootstrapsecrets.GetData(s, bootstrapapi.BootstrapTokenUsageAuthentication) != "true":
		return fmt.Errorf("%w: %s is not for authentication (%s is not \"true\")", ErrRejected, id, bootstrapapi.BootstrapTokenUsageAuthentication)
	case s.DeletionTimestamp != nil:
		return fmt.Errorf("%w: %s is being deleted", ErrRejected, id)
	case bootstrapsecrets.HasExpired(s, now):
		return fmt.Errorf("%w: %s expired at %s", ErrRejected, id, bootstrapsecrets.GetData(s, bootstrapapi.BootstrapTokenExpirationKey))
	}
	want := bootstrapsecrets.GetData(s, bootstrapapi.BootstrapTokenSecretKey)
	if want == "" || subtle.ConstantTimeCompare([]byte(secret), []byte(want)) != 1 {
		return fmt.Errorf("%w: wrong secret for %s", ErrRejected, id)
	}
	return nil
}

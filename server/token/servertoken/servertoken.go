// Package servertoken keeps the server token in force across all servers
// of a cluster and rotates it.
//
// The cluster's server token is published in the Secret
// kube-system/kedge-server-token (key "token", the bare secret). Every
// server runs a Sync: at start it publishes its token file's secret if the
// Secret does not exist yet, then follows the Secret, keeping its Live
// value (what its join API accepts) and its token file
// (<data-dir>/server/token) equal to it. Rotate writes the new token to
// the local token file and then to the Secret: that one write is the
// moment the old token stops working on every server at once, and a
// rotation that fails before it changes nothing in force.
package servertoken

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/kedge/kedge/embedded/backoff"
	"github.com/kedge/kedge/embedded/component"
	"github.com/kedge/kedge/shared/controlloop"
	"github.com/kedge/kedge/shared/token"
)

const (
	// SecretName is the Secret in kube-system that holds the server token.
	SecretName = "kedge-server-token"
	// SecretKey is its key holding the bare secret.
	SecretKey = "token"
)

// Live is the server token's secret in force on this server. The join
// API reads it on every request; Sync changes it. Safe for concurrent use.
type Live struct{ v atomic.Pointer[string] }

// NewLive returns a Live holding secret (the token file's, at start).
func NewLive(secret string) *Live {
	l := &Live{}
	l.v.Store(&secret)
	return l
}

// Secret returns the server token's secret in force now.
func (l *Live) Secret() string { return *l.v.Load() }

func (l *Live) set(s string) { l.v.Store(&s) }

// parse checks the secret of a published token: a bare server secret,
// not a bootstrap token.
func parse(secret string) (string, error) {
	t, err := token.Parse(secret)
	if err != nil {
		return "", err
	}
	if t.IsBootstrap() || t.CAHash != "" {
		return "", errors.New("not a bare server token secret")
	}
	return t.Secret, nil
}

// Sync publishes and follows the Secret (see the package doc).
type Sync struct {
	Client kubernetes.Interface
	// File is this server's token file; CAHash is written into it.
	File   string
	CAHash string
	Live   *Live
	Log    *slog.Logger
	// Decided, if set, is called after every reconcile (for tests).
	Decided func(error)
}

var _ component.Component = (*Sync)(nil)

// Name implements component.Component.
func (s *Sync) Name() string { return "server-token" }

// Run implements component.Component: it is ready once Live and the token
// file follow the Secret (published from Live if it did not exist), keeps
// them following it until ctx ends, and returns nil then. A failed write
// is retried with backoff up to 30 s.
func (s *Sync) Run(ctx context.Context, ready func()) error {
	secrets := informers.NewSharedInformerFactoryWithOptions(s.Client, 0, informers.WithNamespace(metav1.NamespaceSystem),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", SecretName).String()
		})).Core().V1().Secrets()
	var once sync.Once
	loop := &controlloop.Loop[struct{}]{
		Watch: []cache.SharedIndexInformer{secrets.Informer()},
		Reconcile: func(ctx context.Context) (struct{}, error) {
			sec, err := secrets.Lister().Secrets(metav1.NamespaceSystem).Get(SecretName)
			if apierrors.IsNotFound(err) {
				sec = nil
			} else if err != nil {
				return struct{}{}, err
			}
			return struct{}{}, s.reconcile(ctx, sec)
		},
		Retry: backoff.Backoff{Min: time.Second, Max: 30 * time.Second},
		What:  "follow the published server token",
		Log:   s.Log,
		Decided: func(_ struct{}, err error) {
			if err == nil {
				once.Do(ready)
			}
			if s.Decided != nil {
				s.Decided(err)
			}
		},
	}
	return loop.Run(ctx, nil)
}

// reconcile publishes Live when sec is nil (first start of the cluster,
// or the Secret was deleted), else makes Live and the file follow sec.
func (s *Sync) reconcile(ctx context.Context, sec *corev1.Secret) error {
	if sec == nil {
		secrets := s.Client.CoreV1().Secrets(metav1.NamespaceSystem)
		_, err := secrets.Create(ctx, NewSecret(s.Live.Secret()), metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			// Another server published first: follow its token now,
			// before this one is ready, not when the informer sees it.
			if sec, err = secrets.Get(ctx, SecretName, metav1.GetOptions{}); err != nil {
				return fmt.Errorf("read the published server token: %w", err)
			}
			return s.reconcile(ctx, sec)
		}
		if err != nil {
			return fmt.Errorf("publish the server token: %w", err)
		}
		s.Log.Info("published the server token", "secret", metav1.NamespaceSystem+"/"+SecretName)
		return nil
	}
	secret, err := parse(string(sec.Data[SecretKey]))
	if err != nil {
		// Not retried: only a new write of the Secret can fix it.
		s.Log.Error("the published server token is malformed; keeping the one in force", "secret", metav1.NamespaceSystem+"/"+SecretName, "error", err)
		return nil
	}
	if secret != s.Live.Secret() {
		s.Live.set(secret)
		s.Log.Info("the server token changed (kedge token rotate); the new one is in force")
	}
	if stored, err := token.Read(s.File); err == nil && stored.Secret == secret {
		return nil
	}
	if err := token.Replace(s.File, token.Token{CAHash: s.CAHash, Username: token.ServerUser, Secret: secret}); err != nil {
		return fmt.Errorf("store the server token: %w", err)
	}
	s.Log.Info("stored the server token in force", "file", s.File)
	return nil
}

// NewSecret is the Secret publishing secret.
func NewSecret(secret string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: SecretName, Namespace: metav1.NamespaceSystem,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "kedge"}},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{SecretKey: []byte(secret)},
	}
}

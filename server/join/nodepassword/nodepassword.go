// Package nodepassword keeps each node's join password (bcrypt hash) in a
// Secret in kube-system, so that a second machine cannot take over an
// existing node name.
package nodepassword

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Namespace holds the password Secrets.
const Namespace = "kube-system"

// ErrMismatch means the node name is registered with another password.
var ErrMismatch = errors.New("node name is already registered by another machine (node password differs)")

// SecretName is the Secret that holds node's password hash.
func SecretName(node string) string { return node + ".node-password.kedge" }

// Store verifies and records node passwords.
type Store struct {
	Client kubernetes.Interface
}

// Verify checks password against the stored hash for node. A node seen for
// the first time is recorded with this password only if record is true;
// callers record only after every other check has passed, so a refused join
// writes nothing.
func (s *Store) Verify(ctx context.Context, node, password string, record bool) error {
	if password == "" {
		return errors.New("node password is empty")
	}
	secret, err := s.Client.CoreV1().Secrets(Namespace).Get(ctx, SecretName(node), metav1.GetOptions{})
	switch {
	case err == nil:
		if bcrypt.CompareHashAndPassword(secret.Data["hash"], []byte(password)) != nil {
			return ErrMismatch
		}
		return nil
	case !apierrors.IsNotFound(err):
		return fmt.Errorf("read node password: %w", err)
	case !record:
		return nil
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return fmt.Errorf("hash node password: %w", err)
	}
	_, err = s.Client.CoreV1().Secrets(Namespace).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:   SecretName(node),
			Labels: map[string]string{"kedge.io/node-password": "true"},
		},
		Type: "kedge.io/node-password",
		Data: map[string][]byte{"hash": hash},
	}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		// Another join of the same name won the race; check against it.
		return s.Verify(ctx, node, password, false)
	}
	if err != nil {
		return fmt.Errorf("store node password: %w", err)
	}
	return nil
}

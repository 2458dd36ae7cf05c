package servertoken

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kedge/kedge/shared/token"
)

// Rotate makes next the cluster's server token. file is this server's
// token file, caBundle its server CA. It checks next (not a bootstrap
// token, not a node token, its CA hash, if any, this CA's, not the
// current token), then writes file, then the published Secret (compared
// by resourceVersion, so a concurrent rotation is refused, not lost). If
// the Secret cannot be written, file is put back and the old token stays
// in force everywhere. The servers' Syncs then store the new token in
// their own files. It needs a running server (the Secret is written
// through the API).
func Rotate(ctx context.Context, client kubernetes.Interface, file string, caBundle []byte, next token.Token) error {
	hash := token.CAHash(caBundle)
	switch {
	case next.IsBootstrap():
		return errors.New("--new-token is a bootstrap token, which joins agents only; the server token is a secret of at least 16 characters")
	case next.CAHash != "" && next.CAHash != hash:
		return errors.New("--new-token carries a CA hash that does not match this server's CA")
	case next.CAHash != "" && next.Username != token.ServerUser:
		return fmt.Errorf("--new-token is a %q token; the server token's user is %q", next.Username, token.ServerUser)
	}
	old, err := token.Read(file)
	if err != nil {
		return fmt.Errorf("read the current server token: %w", err)
	}
	if next.Secret == old.Secret {
		return errors.New("--new-token is the current server token")
	}
	secrets := client.CoreV1().Secrets(metav1.NamespaceSystem)
	published, err := secrets.Get(ctx, SecretName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("the server has not published its token in %s/%s yet; start (or upgrade) the server and try again", metav1.NamespaceSystem, SecretName)
	}
	if err != nil {
		return fmt.Errorf("read %s/%s (the server must be running): %w", metav1.NamespaceSystem, SecretName, err)
	}
	if current := string(published.Data[SecretKey]); current != old.Secret {
		// Another server rotated and this one has not stored it yet:
		// refuse rather than guess which token the user means to replace.
		return fmt.Errorf("the server token in force (%s/%s) differs from %s; wait for this server to follow it, or rotate on a server that is up to date", metav1.NamespaceSystem, SecretName, file)
	}
	if err := token.Replace(file, token.Token{CAHash: hash, Username: token.ServerUser, Secret: next.Secret}); err != nil {
		return fmt.Errorf("store the new server token (nothing changed): %w", err)
	}
	published.Data[SecretKey] = []byte(next.Secret)
	if _, err := secrets.Update(ctx, published, metav1.UpdateOptions{}); err != nil {
		if rerr := token.Write(file, old); rerr != nil {
			return fmt.Errorf("publish the new server token: %w; and putting back %s failed: %v (the old token stays in force; the server restores the file from %s/%s at its next start)",
				err, file, rerr, metav1.NamespaceSystem, SecretName)
		}
		return fmt.Errorf("publish the new server token (the old one stays in force): %w", err)
	}
	return nil
}

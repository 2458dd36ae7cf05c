package secretsencrypt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/pager"
	"k8s.io/client-go/util/retry"
)

// ReloadTimeout bounds each wait for the apiserver to apply a new config.
const ReloadTimeout = 3 * time.Minute

// startTimeout bounds the first check that the apiserver runs the file:
// several of its 5 s reads.
const startTimeout = 30 * time.Second

// maxPasses bounds the re-encryption passes (see Reencrypt).
const maxPasses = 5

// Rotation is one `kedge secrets-encrypt rotate-keys`.
type Rotation struct {
	// Path is the encryption config (datadir.Server.EncryptionConfig).
	Path string
	// Client reaches the running server's apiserver as cluster admin.
	Client kubernetes.Interface
	// Out receives one line per step; it never sees a key.
	Out io.Writer
	Now func() time.Time
}

// Run rotates the keys in one go: it adds a new key as the write key
// (keeping the old ones to read), waits until the apiserver has applied
// that config, rewrites every Secret until none is left under an old key,
// then drops the old keys and waits for the apiserver again.
//
// It is safe to run again after it died at any point: a config with more
// than one key is an unfinished rotation, which it finishes with the
// current write key instead of adding another. It drops a key only after
// a full pass over every Secret found none that the apiserver read with
// another key. Two rotations at once are refused (a lock beside the file),
// and so is an apiserver (behind the kubeconfig) that does not run this
// file, or a cluster of several servers: nothing changes then.
func (r *Rotation) Run(ctx context.Context) error {
	if err := configured(r.Path); err != nil {
		return err
	}
	unlock, err := lock(r.Path + ".lock")
	if err != nil {
		return err
	}
	defer unlock()
	c, data, err := Load(ctx, r.Path)
	if err != nil {
		return err
	}
	if !c.Enabled() {
		return errors.New("secrets encryption is turned off (the server runs without --secrets-encryption); turn it on to rotate keys")
	}
	// Before anything changes: the server runs, alone.
	if _, err := LoadedHash(ctx, r.Client); err != nil {
		return fmt.Errorf("rotate-keys needs the server running: %w", err)
	}
	if n, err := liveServers(ctx, r.Client, r.Now()); err != nil {
		return err
	} else if n > 1 {
		return fmt.Errorf("this cluster has %d servers, and each keeps its own encryption config; rotate-keys supports one server only (yet)", n)
	}
	// The apiserver behind the kubeconfig must run this file (allowing for
	// a reload still due after an interrupted run): never rotate a file
	// another server reads.
	if err := WaitLoaded(ctx, r.Client, data, startTimeout); err != nil {
		return fmt.Errorf("the apiserver behind the kubeconfig does not run %s (another server's kubeconfig?); nothing changed: %w", r.Path, err)
	}

	if len(c.Keys) == 1 {
		key, err := NewKey(r.Now(), c.KeyNames())
		if err != nil {
			return err
		}
		old := c.Keys[0].Name
		c.Keys = append([]Key{key}, c.Keys...)
		if err := Write(r.Path, c); err != nil {
			return fmt.Errorf("add the new key: %w", err)
		}
		fmt.Fprintf(r.Out, "added key %s as the write key; %s still reads\n", key.Name, old)
	} else {
		fmt.Fprintf(r.Out, "finishing an unfinished rotation to key %s (keys: %v)\n", c.Keys[0].Name, c.KeyNames())
	}
	write := c.Keys[0].Name
	if err := r.waitLoaded(ctx, c); err != nil {
		return err
	}
	fmt.Fprintf(r.Out, "the apiserver writes with %s\n", write)

	rewritten, total, err := Reencrypt(ctx, r.Client)
	if err != nil {
		return fmt.Errorf("re-encrypt Secrets (the old keys stay; run rotate-keys again): %w", err)
	}
	fmt.Fprintf(r.Out, "re-encrypted %d of %d Secrets with %s\n", rewritten, total, write)

	// Re-read: the file must still be the one this rotation wrote.
	now, _, err := Load(ctx, r.Path)
	if err != nil {
		return err
	}
	if !now.Enabled() || !slices.Equal(now.KeyNames(), c.KeyNames()) {
		return fmt.Errorf("%s changed during the rotation (keys %v, enabled %v); run rotate-keys again", r.Path, now.KeyNames(), now.Enabled())
	}
	dropped := c.KeyNames()[1:]
	c.Keys = c.Keys[:1]
	if err := Write(r.Path, c); err != nil {
		return fmt.Errorf("drop the old keys: %w", err)
	}
	if err := r.waitLoaded(ctx, c); err != nil {
		return err
	}
	fmt.Fprintf(r.Out, "dropped key(s) %v; Secrets are encrypted with %s only\n", dropped, write)
	return nil
}

func (r *Rotation) waitLoaded(ctx context.Context, c Config) error {
	return WaitLoaded(ctx, r.Client, Render(c), ReloadTimeout)
}

// Reencrypt rewrites every Secret whose stored value the apiserver did
// not read with its write provider: an update without a change is stored
// again only then (upstream's storage compares the value and the
// transformer's "stale" verdict), with a resourceVersion precondition,
// retried on conflict. It repeats the pass until one rewrites nothing, so
// when it returns nil every Secret it saw was under the write key. It
// returns how many Secrets the first pass rewrote and how many it saw.
func Reencrypt(ctx context.Context, client kubernetes.Interface) (rewritten, total int, err error) {
	for pass := 1; pass <= maxPasses; pass++ {
		n, seen, err := reencryptPass(ctx, client)
		if err != nil {
			return 0, 0, err
		}
		if pass == 1 {
			rewritten, total = n, seen
		}
		if n == 0 {
			return rewritten, total, nil
		}
	}
	return 0, 0, fmt.Errorf("Secrets were still rewritten after %d passes (something keeps changing them)", maxPasses)
}

// reencryptPass updates each Secret once and counts those whose
// resourceVersion changed (they were stored again).
func reencryptPass(ctx context.Context, client kubernetes.Interface) (changed, seen int, err error) {
	secrets := client.CoreV1().Secrets(metav1.NamespaceAll)
	p := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
		return secrets.List(ctx, opts)
	})
	p.PageSize = 200
	err = p.EachListItem(ctx, metav1.ListOptions{}, func(obj runtime.Object) error {
		s := obj.(*corev1.Secret)
		seen++
		rewrote, err := rewrite(ctx, client, s)
		if rewrote {
			changed++
		}
		return err
	})
	return changed, seen, err
}

// rewrite updates s unchanged; on a conflict it reads it again and retries.
// A Secret deleted meanwhile needs nothing.
func rewrite(ctx context.Context, client kubernetes.Interface, s *corev1.Secret) (bool, error) {
	cur := s
	var rewrote bool
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		out, err := client.CoreV1().Secrets(cur.Namespace).Update(ctx, cur, metav1.UpdateOptions{FieldManager: "kedge-secrets-encrypt"})
		if apierrors.IsConflict(err) {
			fresh, getErr := client.CoreV1().Secrets(cur.Namespace).Get(ctx, cur.Name, metav1.GetOptions{})
			if getErr != nil {
				return getErr
			}
			cur = fresh
			return err
		}
		if err != nil {
			return err
		}
		rewrote = out.ResourceVersion != cur.ResourceVersion
		return nil
	})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("Secret %s/%s: %w", s.Namespace, s.Name, err)
	}
	return rewrote, nil
}

// configured fails when there is no config at path.
func configured(path string) error {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("secrets encryption is not set up (no %s); start the server with --secrets-encryption first", path)
	}
	return nil
}

// lock takes an exclusive, non-blocking flock on path (created 0600).
func lock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errors.New("another kedge secrets-encrypt rotate-keys is running")
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

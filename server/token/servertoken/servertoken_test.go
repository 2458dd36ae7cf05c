package servertoken

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/kedge/kedge/scripts/testenv"
	"github.com/kedge/kedge/shared/token"
)

const (
	oldSecret = "old-secret-0123456789"
	newSecret = "new-secret-0123456789"
)

var ca = []byte("server CA")

// tokenFile writes a server token file holding secret.
func tokenFile(t *testing.T, secret string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "server", "token")
	if err := token.Write(path, token.Token{CAHash: token.CAHash(ca), Username: token.ServerUser, Secret: secret}); err != nil {
		t.Fatal(err)
	}
	return path
}

func fileSecret(t *testing.T, path string) string {
	t.Helper()
	tok, err := token.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	return tok.Secret
}

func published(t *testing.T, cs *fake.Clientset) string {
	t.Helper()
	s, err := cs.CoreV1().Secrets(metav1.NamespaceSystem).Get(t.Context(), SecretName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return string(s.Data[SecretKey])
}

func TestSyncPublishesAndFollows(t *testing.T) {
	cs := fake.NewClientset()
	file := tokenFile(t, oldSecret)
	live := NewLive(oldSecret)
	var reconciles atomic.Int32
	sync := &Sync{Client: cs, File: file, CAHash: token.CAHash(ca), Live: live, Log: slog.New(slog.DiscardHandler),
		Decided: func(error) { reconciles.Add(1) }}
	run := testenv.Start(t, sync.Run)
	run.WaitReady(10 * time.Second)
	if got := published(t, cs); got != oldSecret {
		t.Fatalf("published %q, want the token file's secret", got)
	}
	// Another server rotated: this one follows, in memory and on disk.
	if _, err := cs.CoreV1().Secrets(metav1.NamespaceSystem).Update(t.Context(), NewSecret(newSecret), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.WaitUntil(t, 10*time.Second, "Live follows the Secret", func() bool { return live.Secret() == newSecret })
	testenv.WaitUntil(t, 10*time.Second, "the file follows the Secret", func() bool { return fileSecret(t, file) == newSecret })
	if tok, _ := token.Read(file); tok.CAHash != token.CAHash(ca) || tok.Username != token.ServerUser {
		t.Fatalf("file holds %+v", tok)
	}
	// A malformed Secret changes nothing in force.
	seen := reconciles.Load()
	if _, err := cs.CoreV1().Secrets(metav1.NamespaceSystem).Update(t.Context(), NewSecret("short"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.WaitUntil(t, 10*time.Second, "a reconcile of the malformed Secret", func() bool { return reconciles.Load() > seen })
	if live.Secret() != newSecret || fileSecret(t, file) != newSecret {
		t.Fatal("a malformed published token replaced the one in force")
	}
	// A deleted Secret is published again with the token in force.
	if err := cs.CoreV1().Secrets(metav1.NamespaceSystem).Delete(t.Context(), SecretName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.WaitUntil(t, 10*time.Second, "the Secret published again", func() bool {
		s, err := cs.CoreV1().Secrets(metav1.NamespaceSystem).Get(t.Context(), SecretName, metav1.GetOptions{})
		return err == nil && string(s.Data[SecretKey]) == newSecret
	})
}

func TestSyncStartsFromThePublishedToken(t *testing.T) {
	// A server that was down during a rotation starts with a stale file.
	cs := fake.NewClientset(NewSecret(newSecret))
	file := tokenFile(t, oldSecret)
	live := NewLive(oldSecret)
	run := testenv.Start(t, (&Sync{Client: cs, File: file, CAHash: token.CAHash(ca), Live: live, Log: slog.New(slog.DiscardHandler)}).Run)
	run.WaitReady(10 * time.Second)
	// Ready means following: no window where the stale token is accepted.
	if live.Secret() != newSecret || fileSecret(t, file) != newSecret {
		t.Fatalf("at ready: live %t, file %t; want both the published token", live.Secret() == newSecret, fileSecret(t, file) == newSecret)
	}
}

func TestRotate(t *testing.T) {
	cs := fake.NewClientset(NewSecret(oldSecret))
	file := tokenFile(t, oldSecret)
	next, _ := token.Parse(newSecret)
	if err := Rotate(t.Context(), cs, file, ca, next); err != nil {
		t.Fatal(err)
	}
	if fileSecret(t, file) != newSecret || published(t, cs) != newSecret {
		t.Fatal("rotation did not write both the file and the Secret")
	}
}

func TestRotateRefusesAndChangesNothing(t *testing.T) {
	hash := token.CAHash(ca)
	for name, next := range map[string]token.Token{
		"bootstrap token":   {CAHash: hash, Username: token.BootstrapUser, Secret: "abcdef.0123456789abcdef"},
		"other CA":          {CAHash: token.CAHash([]byte("other")), Username: token.ServerUser, Secret: newSecret},
		"node token":        {CAHash: hash, Username: token.NodeUser, Secret: newSecret},
		"the current token": {Username: token.ServerUser, Secret: oldSecret},
	} {
		t.Run(name, func(t *testing.T) {
			cs := fake.NewClientset(NewSecret(oldSecret))
			file := tokenFile(t, oldSecret)
			if err := Rotate(t.Context(), cs, file, ca, next); err == nil {
				t.Fatal("accepted")
			}
			if fileSecret(t, file) != oldSecret || published(t, cs) != oldSecret {
				t.Fatal("a refused rotation changed something")
			}
		})
	}
}

func TestRotateRollsBackWhenTheSecretCannotBeWritten(t *testing.T) {
	cs := fake.NewClientset(NewSecret(oldSecret))
	cs.PrependReactor("update", "secrets", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("etcdserver: request timed out")
	})
	file := tokenFile(t, oldSecret)
	before, _ := os.ReadFile(file)
	next, _ := token.Parse(newSecret)
	if err := Rotate(t.Context(), cs, file, ca, next); err == nil {
		t.Fatal("rotation succeeded without writing the Secret")
	}
	after, _ := os.ReadFile(file)
	if string(after) != string(before) || published(t, cs) != oldSecret {
		t.Fatal("a failed rotation left the new token somewhere")
	}
}

func TestRotateNeedsThePublishedToken(t *testing.T) {
	file := tokenFile(t, oldSecret)
	next, _ := token.Parse(newSecret)
	if err := Rotate(t.Context(), fake.NewClientset(), file, ca, next); err == nil {
		t.Fatal("rotated without a published token")
	}
	// Another server rotated already; this file is stale.
	if err := Rotate(t.Context(), fake.NewClientset(NewSecret("third-secret-0123456789")), file, ca, next); err == nil {
		t.Fatal("rotated from a stale token file")
	}
	if fileSecret(t, file) != oldSecret {
		t.Fatal("a refused rotation changed the file")
	}
}

// TestSyncFollowsAConcurrentPublisher: another server published first
// (create answers AlreadyExists): at ready, this one follows that token.
func TestSyncFollowsAConcurrentPublisher(t *testing.T) {
	cs := fake.NewClientset()
	// The informer's list sees no Secret; the create finds one.
	cs.PrependReactor("create", "secrets", func(clienttesting.Action) (bool, runtime.Object, error) {
		if err := cs.Tracker().Add(NewSecret(newSecret)); err != nil {
			return true, nil, err
		}
		return true, nil, apierrors.NewAlreadyExists(schema.GroupResource{Resource: "secrets"}, SecretName)
	})
	file := tokenFile(t, oldSecret)
	live := NewLive(oldSecret)
	run := testenv.Start(t, (&Sync{Client: cs, File: file, CAHash: token.CAHash(ca), Live: live, Log: slog.New(slog.DiscardHandler)}).Run)
	run.WaitReady(10 * time.Second)
	if live.Secret() != newSecret || fileSecret(t, file) != newSecret {
		t.Fatal("at ready this server does not follow the token published first")
	}
}

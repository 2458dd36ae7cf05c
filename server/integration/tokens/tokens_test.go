// Package tokens checks kedge token on a real server: bootstrap tokens
// join agents until they expire (and the token-cleaner removes them),
// joined nodes keep working, list/delete through the kedge binary, and a
// rotation of the server token takes effect on the running server while a
// failed one changes nothing.
package tokens

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kedge/kedge/agent/join"
	"github.com/kedge/kedge/scripts/testenv"
	"github.com/kedge/kedge/server/integration/harness"
	"github.com/kedge/kedge/server/token/bootstrap"
	"github.com/kedge/kedge/server/token/servertoken"
	"github.com/kedge/kedge/shared/joinapi"
	"github.com/kedge/kedge/shared/token"
)

// kedge runs the binary with $KUBECONFIG set to the server's admin
// kubeconfig and returns stdout, stderr and the exit code.
func kedge(t *testing.T, kubeconfig string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(harness.Binary(t), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return stdout.String(), stderr.String(), 0
	case errors.As(err, &exit):
		return stdout.String(), stderr.String(), exit.ExitCode()
	}
	t.Fatalf("kedge %v: %v", args, err)
	return "", "", -1
}

// whoAmI is the username the API sees for a node's client certificate.
func whoAmI(t *testing.T, srv *harness.Joinable, certs *join.Certs) (string, error) {
	t.Helper()
	r, err := srv.ClientAs(certs.KubeletClientCert, certs.KubeletClientKey).AuthenticationV1().SelfSubjectReviews().
		Create(t.Context(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return r.Status.UserInfo.Username, nil
}

func node(name string) join.Node {
	return join.Node{Name: name, Password: "pw-" + name, Addresses: []string{"192.0.2.30", name}}
}

// status posts a join request with Basic credentials and returns the HTTP status.
func status(t *testing.T, srv *harness.Joinable, path, user, secret string, body any) int {
	t.Helper()
	code, _, err := join.PostPinned(t.Context(), srv.URL, path, srv.CA, user, secret, body, 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// TestTokens runs one in-process server (the control plane can run once
// per process) for both halves.
func TestTokens(t *testing.T) {
	dataDir := t.TempDir()
	c := harness.NewConfig(t, dataDir)
	srv := harness.StartJoinable(t, c)
	t.Run("bootstrap", func(t *testing.T) { testBootstrapTokens(t, srv, dataDir) })
	t.Run("rotate", func(t *testing.T) { testRotate(t, srv, dataDir) })
}

func testBootstrapTokens(t *testing.T, srv *harness.Joinable, dataDir string) {
	kc := srv.Config.WriteKubeconfig

	// create prints the full form, pinned to this server's CA.
	out, stderr, code := kedge(t, kc, "token", "create", "--data-dir", dataDir, "--ttl", "3s", "--description", "integration", "--groups", "system:bootstrappers:edge")
	if code != 0 {
		t.Fatalf("token create: exit %d: %s", code, stderr)
	}
	tok, err := token.Parse(out)
	if err != nil || !tok.IsBootstrap() || tok.CAHash != srv.ServerToken.CAHash || !strings.HasPrefix(strings.TrimSpace(out), "K10"+tok.CAHash+"::") {
		t.Fatalf("token create printed %q: %+v, %v", out, tok, err)
	}
	id, secret := tok.BootstrapID(), strings.TrimPrefix(tok.Secret, tok.BootstrapID()+".")

	// kubectl sees a real bootstrap token Secret.
	s, err := srv.Client.CoreV1().Secrets("kube-system").Get(t.Context(), "bootstrap-token-"+id, metav1.GetOptions{})
	if err != nil || s.Type != "bootstrap.kubernetes.io/token" || string(s.Data["description"]) != "integration" {
		t.Fatalf("Secret: %+v, %v", s, err)
	}

	// list shows it, never its secret.
	out, stderr, code = kedge(t, kc, "token", "list", "--output", "json")
	var infos []bootstrap.Info
	if code != 0 || json.Unmarshal([]byte(out), &infos) != nil || len(infos) != 1 || infos[0].ID != id ||
		infos[0].Expires == nil || infos[0].Description != "integration" || len(infos[0].Groups) != 1 {
		t.Fatalf("token list -o json: exit %d, %q, %s", code, out, stderr)
	}
	text, _, code := kedge(t, kc, "token", "list")
	if code != 0 || !strings.Contains(text, id) || !strings.Contains(text, "system:bootstrappers:edge") {
		t.Fatalf("token list: exit %d: %q", code, text)
	}
	if strings.Contains(out+text, secret) {
		t.Fatal("token list printed the secret")
	}

	// An agent joins with it, as kedge agent does.
	ca, err := join.FetchCA(t.Context(), srv.URL, tok)
	if err != nil {
		t.Fatal(err)
	}
	joined, err := join.RequestCerts(t.Context(), srv.URL, ca, tok, node("boot-1"))
	if err != nil {
		t.Fatalf("join with a bootstrap token: %v", err)
	}
	if who, err := whoAmI(t, srv, joined); err != nil || who != "system:node:boot-1" {
		t.Fatalf("joined node is %q, %v", who, err)
	}
	// Bootstrap tokens never join servers.
	serverJoin := joinapi.ServerJoinRequest{NodeName: "second", EtcdPeerURL: "https://192.0.2.2:2380"}
	if code := status(t, srv, joinapi.ServerJoinPath, token.BootstrapUser, tok.Secret, serverJoin); code != http.StatusForbidden {
		t.Fatalf("server join with a bootstrap token: %d, want 403", code)
	}

	// After it expires, new joins are refused (401)...
	testenv.WaitFor(t, 30*time.Second, "the expired token refused", func() error {
		if code := status(t, srv, joinapi.NodeCertsPath, token.BootstrapUser, tok.Secret, joinapi.NodeCertsRequest{NodeName: "boot-2"}); code != http.StatusUnauthorized {
			return errors.New("status " + http.StatusText(code))
		}
		return nil
	})
	if _, err := join.RequestCerts(t.Context(), srv.URL, ca, tok, node("boot-2")); err == nil || !strings.Contains(err.Error(), "rejected bootstrap token "+id) {
		t.Fatalf("join after expiry: %v", err)
	}
	// ...the node that joined keeps working with its certificate...
	if who, err := whoAmI(t, srv, joined); err != nil || who != "system:node:boot-1" {
		t.Fatalf("after expiry the joined node is %q, %v", who, err)
	}
	// ...and the controller-manager's token-cleaner removes the Secret.
	testenv.WaitFor(t, 90*time.Second, "the token-cleaner removes the expired token", func() error {
		_, err := srv.Client.CoreV1().Secrets("kube-system").Get(t.Context(), "bootstrap-token-"+id, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return errors.New("still there")
	})

	// delete: the token stops joining at once; a second delete is an error.
	out, _, code = kedge(t, kc, "token", "create", "--data-dir", dataDir)
	other, err := token.Parse(out)
	if code != 0 || err != nil {
		t.Fatalf("token create: exit %d, %v", code, err)
	}
	if _, stderr, code := kedge(t, kc, "token", "delete", other.BootstrapID()); code != 0 {
		t.Fatalf("token delete: exit %d: %s", code, stderr)
	}
	if code := status(t, srv, joinapi.NodeCertsPath, token.BootstrapUser, other.Secret, joinapi.NodeCertsRequest{NodeName: "boot-3"}); code != http.StatusUnauthorized {
		t.Fatalf("join with a deleted token: %d, want 401", code)
	}
	if _, stderr, code := kedge(t, kc, "token", "delete", other.BootstrapID()); code != 1 || !strings.Contains(stderr, "no such bootstrap token") {
		t.Fatalf("deleting a missing token: exit %d: %s", code, stderr)
	}
	if out, _, _ := kedge(t, kc, "token", "list", "-o", "json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("tokens left: %s", out)
	}
}

// TestBadInput: one clear line and exit code 2, nothing made.
func TestBadInput(t *testing.T) {
	// No server: every one of these fails before it needs the API.
	kc := filepath.Join(t.TempDir(), "no-such-kubeconfig")
	for _, args := range [][]string{
		{"token", "create", "--ttl", "tomorrow"},
		{"token", "create", "--ttl", "10ms"},
		{"token", "create", "--ttl", "-1h"},
		{"token", "create", "--groups", "system:masters"},
		{"token", "create", "extra"},
		{"token", "list", "--output", "yaml"},
		{"token", "delete"},
		{"token", "delete", "ABCDEF"},
		{"token", "delete", "abcdef.0123456789abcdef"},
		{"token", "rotate"},
		{"token", "rotate", "--new-token", "short"},
		{"token", "rotate", "--new-token", "abcdef.0123456789abcdef"},
	} {
		_, stderr, code := kedge(t, kc, args...)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != 2 || len(lines) != 1 || !strings.HasPrefix(lines[0], "kedge: ") {
			t.Errorf("kedge %s: exit %d, stderr %q; want exit 2 and one line", strings.Join(args, " "), code, stderr)
		}
	}
}

func testRotate(t *testing.T, srv *harness.Joinable, dataDir string) {
	kc := srv.Config.WriteKubeconfig
	file := filepath.Join(dataDir, "server", "token")
	old := srv.ServerToken

	// The server published its token.
	published := func() string {
		s, err := srv.Client.CoreV1().Secrets("kube-system").Get(t.Context(), servertoken.SecretName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return string(s.Data[servertoken.SecretKey])
	}
	if published() != old.Secret {
		t.Fatal("the published server token is not the token file's")
	}
	joined, err := join.RequestCerts(t.Context(), srv.URL, srv.CA, old, node("rot-1"))
	if err != nil {
		t.Fatal(err)
	}

	// Failed rotations leave everything as it was.
	before, _ := os.ReadFile(file)
	if _, stderr, code := kedge(t, kc, "token", "rotate", "--data-dir", dataDir, "--new-token", "too-short"); code != 2 {
		t.Fatalf("invalid token: exit %d: %s", code, stderr)
	}
	if _, stderr, code := kedge(t, filepath.Join(t.TempDir(), "missing"), "token", "rotate", "--data-dir", dataDir, "--new-token", "unreachable-api-0123456789"); code != 1 {
		t.Fatalf("no API: exit %d: %s", code, stderr)
	}
	if _, stderr, code := kedge(t, kc, "token", "rotate", "--data-dir", dataDir, "--new-token", old.Secret); code != 1 {
		t.Fatalf("same token: exit %d: %s", code, stderr)
	}
	if after, _ := os.ReadFile(file); !bytes.Equal(before, after) || published() != old.Secret {
		t.Fatal("a failed rotation changed the token file or the published token")
	}
	if _, err := join.RequestCerts(t.Context(), srv.URL, srv.CA, old, node("rot-2")); err != nil {
		t.Fatalf("the old token stopped working after failed rotations: %v", err)
	}

	// A rotation: the running server takes the new token at once, without a restart.
	const newSecret = "rotated-server-secret-0123456789"
	out, stderr, code := kedge(t, kc, "token", "rotate", "--data-dir", dataDir, "--new-token", newSecret)
	if code != 0 {
		t.Fatalf("token rotate: exit %d: %s", code, stderr)
	}
	if strings.Contains(out+stderr, newSecret) {
		t.Fatal("rotate printed the secret")
	}
	stored, err := token.Read(file)
	if err != nil || stored.Secret != newSecret || stored.CAHash != old.CAHash || stored.Username != token.ServerUser || published() != newSecret {
		t.Fatalf("after rotate: file %+v (%v), published new %t", stored, err, published() == newSecret)
	}
	next := old
	next.Secret = newSecret
	testenv.WaitFor(t, 15*time.Second, "the old server token refused", func() error {
		if code := status(t, srv, joinapi.NodeCertsPath, token.ServerUser, old.Secret, joinapi.NodeCertsRequest{NodeName: "rot-3"}); code != http.StatusUnauthorized {
			return errors.New(http.StatusText(code))
		}
		return nil
	})
	if _, err := join.RequestCerts(t.Context(), srv.URL, srv.CA, next, node("rot-3")); err != nil {
		t.Fatalf("the new token does not join: %v", err)
	}
	// Joined nodes keep working with their certificates.
	if who, err := whoAmI(t, srv, joined); err != nil || who != "system:node:rot-1" {
		t.Fatalf("after rotation the joined node is %q, %v", who, err)
	}

	// Another server of the cluster rotates (it writes the shared Secret):
	// this one follows through its watch, in its join API and its token file.
	const third = "rotated-elsewhere-0123456789"
	if _, err := srv.Client.CoreV1().Secrets("kube-system").Update(t.Context(), servertoken.NewSecret(third), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 15*time.Second, "the token file follows the cluster's token", func() error {
		if tok, err := token.Read(file); err != nil || tok.Secret != third || tok.CAHash != old.CAHash {
			return errors.New("not yet")
		}
		return nil
	})
	if code := status(t, srv, joinapi.NodeCertsPath, token.ServerUser, newSecret, joinapi.NodeCertsRequest{NodeName: "rot-4"}); code != http.StatusUnauthorized {
		t.Fatalf("the token replaced elsewhere still joins: %d", code)
	}
	next.Secret = third
	if _, err := join.RequestCerts(t.Context(), srv.URL, srv.CA, next, node("rot-4")); err != nil {
		t.Fatalf("the cluster's new token does not join: %v", err)
	}
}

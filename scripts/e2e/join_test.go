package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kedge/kedge/scripts/e2e/hosts"
	"github.com/kedge/kedge/server/integration/harness"
	"github.com/kedge/kedge/server/join/nodepassword"
	"github.com/kedge/kedge/shared/token"
)

// TestJoinRefusalsRestartAndImageDropIn: agents with a wrong token or a
// wrong CA hash are refused with a clear error and leave nothing on the
// server; a joined agent restarts from its stored credentials; an image
// tarball dropped in while the agent runs is imported and runs.
func TestJoinRefusalsRestartAndImageDropIn(t *testing.T) {
	kedge := harness.Binary(t)
	net := hosts.NewNetwork(t)
	srvHost := net.AddHost(t, "server")
	srv := srvHost.Start(t, kedge, "server", "--disable-agent", "--agent-token", "agent-secret-0123456789")
	waitForServer(t, srvHost, srv)
	admin := adminClient(t, srvHost)
	ctx := t.Context()
	serverToken, err := token.Read(filepath.Join(srvHost.Root, "var/lib/kedge/server/token"))
	if err != nil {
		t.Fatal(err)
	}
	agentToken := token.Token{CAHash: serverToken.CAHash, Username: token.NodeUser, Secret: "agent-secret-0123456789"}
	url := "https://" + srvHost.IP + ":6443"

	refused := func(name string, tok token.Token, want string) {
		h := net.AddHost(t, name)
		p := h.Start(t, kedge, "agent", "--server", url, "--token", tok.String())
		waitFor(t, 30*time.Second, name+": "+want, []*hosts.Proc{srv, p}, func() bool { return strings.Contains(p.Output(), want) })
		if _, err := admin.CoreV1().Secrets(nodepassword.Namespace).Get(ctx, nodepassword.SecretName(name), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("%s: a refused agent left a node password (%v)", name, err)
		}
		if _, err := admin.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("%s: a refused agent has a Node object (%v)", name, err)
		}
		if err := p.Stop(15 * time.Second); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	badSecret := agentToken
	badSecret.Secret = "wrong-secret-0123456789"
	refused("wrongtoken", badSecret, "the server rejected the token")
	badCA := agentToken
	badCA.CAHash = token.CAHash([]byte("another CA"))
	refused("wrongca", badCA, "does not match the CA hash in the token")

	// A broken registries.yaml stops the agent before it contacts the server.
	bad := net.AddHost(t, "badregistries")
	if err := os.MkdirAll(filepath.Join(bad.Root, "etc/kedge"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(bad.Root, "etc/kedge/registries.yaml"), []byte("mirrors: ["), 0o600)
	bp := bad.Start(t, kedge, "agent", "--server", url, "--token", agentToken.String())
	waitFor(t, 30*time.Second, "the agent to refuse a broken registries.yaml", []*hosts.Proc{srv}, func() bool {
		_, done := bp.Exited()
		return done
	})
	if err, _ := bp.Exited(); err == nil || !strings.Contains(bp.Output(), "kedge: registries:") {
		t.Fatalf("broken registries.yaml: exit %v, output:\n%s", err, bp.Output())
	}
	if _, err := admin.CoreV1().Secrets(nodepassword.Namespace).Get(ctx, nodepassword.SecretName("badregistries"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("an agent with a broken registries.yaml joined (%v)", err)
	}

	h := net.AddHost(t, "edge")
	// A registry mirror on the host side of the bridge serves every
	// repository of "registry.invalid" under the prefix "cache/".
	mirror := startMirror(t, net.Gateway())
	if err := os.MkdirAll(filepath.Join(h.Root, "etc/kedge"), 0o755); err != nil {
		t.Fatal(err)
	}
	registriesYAML := fmt.Sprintf("mirrors:\n  registry.invalid:\n    endpoint: [\"http://%s\"]\n    rewrite:\n      \"^(.*)$\": \"cache/$1\"\n", mirror.addr)
	if err := os.WriteFile(filepath.Join(h.Root, "etc/kedge/registries.yaml"), []byte(registriesYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	a := h.Start(t, kedge, "agent", "--server", url, "--token", agentToken.String())
	waitFor(t, 90*time.Second, "agent ready", []*hosts.Proc{srv, a}, a.Ready)
	for _, f := range []string{"cred/kubelet-client.key", "cred/kubelet.kubeconfig", "node-password"} {
		st, err := os.Stat(filepath.Join(h.Root, "var/lib/kedge/agent", f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", f, st, err)
		}
	}
	if err := a.Stop(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(a.Output(), "kedge agent stopped") {
		t.Fatalf("no clean stop:\n%s", a.Output())
	}
	// A join issues new credentials; a restart keeps the stored ones.
	clientCert := filepath.Join(h.Root, "var/lib/kedge/agent/cred/kubelet-client.crt")
	certBefore, err := os.ReadFile(clientCert)
	if err != nil {
		t.Fatal(err)
	}
	b := h.Start(t, kedge, "agent", "--server", url, "--token", agentToken.String())
	waitFor(t, 60*time.Second, "restarted agent ready", []*hosts.Proc{srv, b}, b.Ready)
	if certAfter, err := os.ReadFile(clientCert); err != nil || !bytes.Equal(certAfter, certBefore) {
		t.Fatalf("restart joined again instead of using stored credentials (kubelet-client.crt changed, %v):\n%s", err, b.Output())
	}
	// `kedge ctr` on the node talks to kedge's containerd in the k8s.io namespace.
	ctr := h.Start(t, kedge, "ctr", "images", "ls", "-q")
	waitFor(t, 30*time.Second, "kedge ctr to finish", nil, func() bool { _, done := ctr.Exited(); return done })
	if err, _ := ctr.Exited(); err != nil || !strings.Contains(ctr.Output(), "kedge.local/pause:1") {
		t.Fatalf("kedge ctr images ls: %v\n%s", err, ctr.Output())
	}

	// An image dropped in while the agent runs is imported and runs.
	staged := filepath.Join(t.TempDir(), "testimage.tar")
	buildTestImage(t, staged)
	if err := os.Rename(staged, filepath.Join(h.Root, "var/lib/kedge/agent/images/testimage.tar")); err != nil {
		t.Fatal(err)
	}
	_, err = admin.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "dropped"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "web", Image: "kedge.local/testimage:1", ImagePullPolicy: corev1.PullNever,
		}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 90*time.Second, "the pod of the dropped-in image Running", []*hosts.Proc{srv, b}, func() bool {
		p, err := admin.CoreV1().Pods("default").Get(ctx, "dropped", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning
	})
	// An image that exists only on the mirror, under the rewritten name, is pulled.
	mirror.push(t, filepath.Join(h.Root, "var/lib/kedge/agent/images/testimage.tar"), "cache/web:1")
	_, err = admin.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "mirrored"},
		Spec: corev1.PodSpec{NodeName: "edge", Containers: []corev1.Container{{
			Name: "web", Image: "registry.invalid/web:1", ImagePullPolicy: corev1.PullAlways,
		}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 90*time.Second, "the pod of the mirrored image Running", []*hosts.Proc{srv, b}, func() bool {
		p, err := admin.CoreV1().Pods("default").Get(ctx, "mirrored", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning
	})
	if !mirror.served("/v2/cache/web/manifests/1") {
		t.Fatalf("the mirror never served the rewritten manifest path; it saw %v", mirror.paths())
	}
	// Imported images are pinned, so the kubelet's image GC never deletes
	// them (nothing could bring them back offline).
	out, stderr, err := h.Exec(t, time.Minute, []string{pathEnv}, kedge, "crictl", "images", "-o", "json")
	if err != nil {
		t.Fatalf("kedge crictl images: %v\n%s", err, stderr)
	}
	var list struct {
		Images []struct {
			RepoTags []string `json:"repoTags"`
			Pinned   bool     `json:"pinned"`
		} `json:"images"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("crictl images: %v\n%s", err, out)
	}
	pinnedTags := map[string]bool{}
	for _, img := range list.Images {
		for _, tag := range img.RepoTags {
			pinnedTags[tag] = img.Pinned
		}
	}
	for tag, want := range map[string]bool{"kedge.local/pause:1": true, "kedge.local/testimage:1": true} {
		if got, ok := pinnedTags[tag]; !ok || got != want {
			t.Errorf("image %s: listed %v, pinned %v, want pinned %v (all: %v)", tag, ok, got, want, pinnedTags)
		}
	}
	if err := b.Stop(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(15 * time.Second); err != nil {
		t.Fatal(err)
	}
}

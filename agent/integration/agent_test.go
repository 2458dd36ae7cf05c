// Package integration runs the kedge agent binary against a real server:
// joining with CA pinning, refused tokens, containerd with the embedded
// runtime, and image tarballs imported from the images directory.
package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kedge/kedge/scripts/e2e/testenv"
	"github.com/kedge/kedge/scripts/imagebuild/ociimage"
	"github.com/kedge/kedge/server/integration/harness"
	"github.com/kedge/kedge/server/nodepassword"
	"github.com/kedge/kedge/server/token"
)

type output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *output) Write(p []byte) (int, error) { o.mu.Lock(); defer o.mu.Unlock(); return o.b.Write(p) }
func (o *output) String() string              { o.mu.Lock(); defer o.mu.Unlock(); return o.b.String() }

type agentProc struct {
	cmd    *exec.Cmd
	out    *output
	exited chan error
	run    string
	data   string
}

// startAgent runs `kedge agent` with its own data and run dirs; cleanup
// stops it and removes every mount, socket and directory it made.
func startAgent(t *testing.T, server, tok, node string) *agentProc {
	t.Helper()
	return startAgentIn(t, t.TempDir(), "/run/kedge-test-"+testenv.RandomID(t), server, tok, node)
}

// startAgentIn runs `kedge agent` on the given data and run dirs (which a
// restarted agent reuses).
func startAgentIn(t *testing.T, data, run, server, tok, node string) *agentProc {
	t.Helper()
	a := &agentProc{out: &output{}, exited: make(chan error, 1), run: run, data: data}
	a.cmd = exec.Command(harness.Binary(t), "agent", "--server", server, "--token", tok,
		"--data-dir", a.data, "--run-dir", a.run, "--node-name", node, "--node-ip", "192.0.2.50")
	a.cmd.Stdout, a.cmd.Stderr = a.out, a.out
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { a.exited <- a.cmd.Wait() }()
	t.Cleanup(func() {
		if a.cmd.ProcessState == nil {
			_ = a.cmd.Process.Kill()
			<-a.exited
		}
		testenv.UnmountUnder(t, a.data, a.run)
		os.RemoveAll(a.run)
	})
	return a
}

func (a *agentProc) stop(t *testing.T) {
	t.Helper()
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-a.exited:
		if err != nil {
			t.Fatalf("agent exited with %v after SIGTERM:\n%s", err, a.out.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("agent did not stop within 15s of SIGTERM")
	}
}

func (a *agentProc) waitOutput(t *testing.T, want string, timeout time.Duration) {
	t.Helper()
	harness.WaitFor(t, timeout, "agent log line "+strconv.Quote(want), func() error {
		if strings.Contains(a.out.String(), want) {
			return nil
		}
		select {
		case err := <-a.exited:
			a.exited <- err
			t.Fatalf("agent exited (%v):\n%s", err, a.out.String())
		default:
		}
		return os.ErrNotExist
	})
}

func TestAgentJoinsAndRunsContainerd(t *testing.T) {
	ctx := t.Context()
	dataDir := t.TempDir()
	c := harness.NewConfig(t, dataDir)
	c.AgentToken = "agent-secret-0123456789"
	srv := harness.StartInProcess(t, c)
	server := "https://127.0.0.1:" + strconv.Itoa(c.HTTPSListenPort)
	serverToken, err := token.Read(filepath.Join(dataDir, "server/token"))
	if err != nil {
		t.Fatal(err)
	}
	agentToken := token.Token{CAHash: serverToken.CAHash, Username: token.NodeUser, Secret: c.AgentToken}
	secrets := srv.Client.CoreV1().Secrets(nodepassword.Namespace)

	t.Run("wrong token", func(t *testing.T) {
		bad := agentToken
		bad.Secret = "wrong-secret-0123456789"
		a := startAgent(t, server, bad.String(), "bad-token-node")
		a.waitOutput(t, "the server rejected the token", 20*time.Second)
		if _, err := secrets.Get(ctx, nodepassword.SecretName("bad-token-node"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("refused agent left a node password: %v", err)
		}
	})
	t.Run("wrong CA hash", func(t *testing.T) {
		bad := agentToken
		bad.CAHash = token.CAHash([]byte("some other CA"))
		a := startAgent(t, server, bad.String(), "bad-ca-node")
		a.waitOutput(t, "does not match the CA hash in the token", 20*time.Second)
		if _, err := secrets.Get(ctx, nodepassword.SecretName("bad-ca-node"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("refused agent left a node password: %v", err)
		}
	})

	a := startAgent(t, server, agentToken.String(), "edge-a")
	a.waitOutput(t, "kedge agent is ready", 90*time.Second)
	if _, err := secrets.Get(ctx, nodepassword.SecretName("edge-a"), metav1.GetOptions{}); err != nil {
		t.Fatalf("joined agent has no node password on the server: %v", err)
	}
	for _, f := range []string{"agent/cred/kubelet-client.key", "agent/cred/kubelet.kubeconfig", "agent/node-password"} {
		st, err := os.Stat(filepath.Join(a.data, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", f, st, err)
		}
	}
	socket := filepath.Join(a.run, "containerd", "containerd.sock")
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	imgs := runtimeapi.NewImageServiceClient(conn)
	hasImage := func(ref string) func() error {
		return func() error {
			st, err := imgs.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
			if err != nil {
				return err
			}
			if st.Image == nil {
				return os.ErrNotExist
			}
			return nil
		}
	}
	harness.WaitFor(t, 10*time.Second, "the embedded pause image in CRI", hasImage("kedge.local/pause:1"))

	// Dropping a tarball into the images directory imports it.
	bin := filepath.Join(t.TempDir(), "testimage")
	build := exec.Command("go", "build", "-ldflags", "-s -w", "-o", bin, "github.com/kedge/kedge/scripts/images/testimage")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	staged := filepath.Join(t.TempDir(), "testimage.tar")
	if err := ociimage.WriteTarball(bin, "kedge.local/testimage:1", "", staged); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(staged, filepath.Join(a.data, "agent/images/testimage.tar")); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, 30*time.Second, "the dropped test image in CRI", hasImage("kedge.local/testimage:1"))

	a.stop(t)
	if !strings.Contains(a.out.String(), "kedge agent stopped") {
		t.Fatalf("no clean stop:\n%s", a.out.String())
	}
	// A restart uses the stored credentials without joining again.
	b := startAgentIn(t, a.data, a.run, server, agentToken.String(), "edge-a")
	b.waitOutput(t, "using stored node credentials", 30*time.Second)
	b.waitOutput(t, "kedge agent is ready", 60*time.Second)
	b.stop(t)
}

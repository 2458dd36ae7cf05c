// Package harness starts real kedge control planes for integration tests:
// in-process through server.Run, or as the kedge binary, on free ports in a
// temporary data dir. Everything it starts is stopped by t.Cleanup.
package harness

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kedge/kedge/scripts/testenv"
	"github.com/kedge/kedge/server"
	"github.com/kedge/kedge/server/config"
)

// FreePort returns a TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ServerCAPool returns the pool of the server CA in dataDir, which verifies
// the server's public port.
func ServerCAPool(t testing.TB, dataDir string) *x509.CertPool {
	t.Helper()
	caPEM, err := os.ReadFile(filepath.Join(dataDir, "server", "tls", "server-ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("server-ca.crt holds no certificate")
	}
	return roots
}

// NewConfig returns a server config in dataDir, listening on loopback on
// free ports, without an agent.
func NewConfig(t testing.TB, dataDir string) config.Config {
	c := config.Default()
	c.DataDir = dataDir
	c.HTTPSListenPort = FreePort(t)
	c.APIServerPort = FreePort(t)
	c.BindAddress = "127.0.0.1"
	c.NodeName = "kedge-test"
	c.DisableAgent = true
	c.EtcdClientPort = FreePort(t)
	c.EtcdPeerPort = FreePort(t)
	c.WriteKubeconfig = filepath.Join(dataDir, "admin.yaml")
	return c
}

// Args renders c as kedge server flags.
func Args(c config.Config) []string {
	args := []string{"server",
		"--data-dir", c.DataDir,
		"--https-listen-port", strconv.Itoa(c.HTTPSListenPort),
		"--apiserver-port", strconv.Itoa(c.APIServerPort),
		"--bind-address", c.BindAddress,
		"--node-name", c.NodeName,
		"--etcd-client-port", strconv.Itoa(c.EtcdClientPort),
		"--etcd-peer-port", strconv.Itoa(c.EtcdPeerPort),
		"--write-kubeconfig", c.WriteKubeconfig,
		// An empty config file, so that the host's /etc/kedge/config.yaml is ignored.
		"--config", os.DevNull,
	}
	if c.DisableAgent {
		args = append(args, "--disable-agent")
	}
	if c.ClusterInit {
		args = append(args, "--cluster-init")
	}
	if c.AgentToken != "" {
		args = append(args, "--agent-token", c.AgentToken)
	}
	if c.DatastoreEndpoint != "" {
		args = append(args, "--datastore-endpoint", c.DatastoreEndpoint)
	}
	for _, addon := range c.Disable {
		args = append(args, "--disable", addon)
	}
	if c.SecretsEncryption {
		args = append(args, "--secrets-encryption")
	}
	if c.SnapshotScheduleCron != "" {
		args = append(args, "--snapshot-schedule-cron", c.SnapshotScheduleCron, "--snapshot-retention", strconv.Itoa(c.SnapshotRetention))
	}
	if c.SnapshotDir != "" {
		args = append(args, "--snapshot-dir", c.SnapshotDir)
	}
	if c.DisableSnapshots {
		args = append(args, "--disable-snapshots")
	}
	if c.Server != "" {
		args = append(args, "--server", c.Server)
	}
	if c.Token != "" {
		args = append(args, "--token", c.Token)
	}
	if c.DatastoreCompactInterval != 0 {
		args = append(args, "--datastore-compact-interval", c.DatastoreCompactInterval.String())
	}
	if c.DatastoreMaintainInterval != 0 {
		args = append(args, "--datastore-maintain-interval", c.DatastoreMaintainInterval.String())
	}
	return args
}

// Server is a running control plane.
type Server struct {
	Config config.Config
	Client *kubernetes.Clientset
	// AllReady is closed once every component of the server is ready: it
	// sent READY=1 to its $NOTIFY_SOCKET, which may come after /readyz.
	AllReady <-chan struct{}
	stop     func(t testing.TB)
	kill     func()
}

// Kill sends SIGKILL to a server started by StartBinary (a crash, or a
// power cut as far as the process can tell) and waits for it to exit.
// Stop after Kill does nothing.
func (s *Server) Kill(t testing.TB) {
	t.Helper()
	if s.kill == nil {
		t.Fatal("Kill: not a running binary server")
	}
	s.kill()
	s.kill, s.stop = nil, nil
}

// Stop stops the server and fails the test if it does not stop cleanly
// within 20 s. It is safe to call twice.
func (s *Server) Stop(t testing.TB) {
	if s.stop != nil {
		s.stop(t)
		s.stop = nil
	}
	s.kill = nil
}

// StartInProcess runs server.Run in this process and waits for /readyz.
// It sets $NOTIFY_SOCKET for server.Run to take, so the test must not be
// parallel.
func StartInProcess(t testing.TB, c config.Config) *Server {
	t.Helper()
	cc, err := c.Complete()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	notify := testenv.ListenNotify(t)
	t.Setenv("NOTIFY_SOCKET", notify.Path)
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	go func() { done <- server.Run(ctx, cc, log) }()
	s := &Server{Config: c, AllReady: notify.Ready()}
	s.stop = func(t testing.TB) {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server stopped with error: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("server did not stop within 20s")
		}
	}
	t.Cleanup(func() { s.Stop(t) })
	s.Client = waitReady(t, c.WriteKubeconfig, func() error {
		select {
		case err := <-done:
			s.stop = nil
			return fmt.Errorf("server exited before ready: %v", err)
		default:
			return nil
		}
	})
	return s
}

// StartBinary runs the kedge binary with args and waits for /readyz using the
// kubeconfig c.WriteKubeconfig.
func StartBinary(t testing.TB, c config.Config) *Server {
	t.Helper()
	out := &testenv.Output{}
	notify := testenv.ListenNotify(t)
	cmd := exec.Command(Binary(t), Args(c)...)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+notify.Path)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	s := &Server{Config: c, AllReady: notify.Ready()}
	s.kill = func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	s.stop = func(t testing.TB) {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("kedge server exited with %v; output:\n%s", err, tail(out.String(), 40))
			}
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Error("kedge server did not stop within 20s of SIGTERM")
		}
	}
	t.Cleanup(func() { s.Stop(t) })
	s.Client = waitReady(t, c.WriteKubeconfig, func() error {
		select {
		case err := <-exited:
			s.stop, s.kill = nil, nil
			return fmt.Errorf("kedge server exited before ready (%v); output:\n%s", err, tail(out.String(), 40))
		default:
			return nil
		}
	})
	return s
}

func waitReady(t testing.TB, kubeconfig string, alive func() error) *kubernetes.Clientset {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var client *kubernetes.Clientset
	var lastErr error
	for time.Now().Before(deadline) {
		if err := alive(); err != nil {
			t.Fatal(err)
		}
		if client == nil {
			if rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig); err == nil {
				client = kubernetes.NewForConfigOrDie(rc)
			}
		}
		if client != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, lastErr = client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
			cancel()
			if lastErr == nil {
				return client
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("server not ready within 90s: %v", lastErr)
	return nil
}

// WaitFor polls check until it returns nil or timeout passes (testenv.WaitFor).
func WaitFor(t testing.TB, timeout time.Duration, what string, check func() error) {
	t.Helper()
	testenv.WaitFor(t, timeout, what, check)
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary returns the kedge binary: $KEDGE_BIN if set, else one built once per
// test process with the caller's Go flags (scripts/goenv).
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("KEDGE_BIN"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kedge-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "kedge")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/kedge/kedge").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build kedge: %v", buildErr)
	}
	return binPath
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

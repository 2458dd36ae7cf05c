package containerd

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kedge/kedge/agent/runtime/bundle"
	agentcontainerd "github.com/kedge/kedge/agent/runtime/containerd"
	"github.com/kedge/kedge/agent/runtime/images"
	"github.com/kedge/kedge/scripts/imagebuild/ociimage"
	"github.com/kedge/kedge/scripts/testenv"
)

// TestRunsAPodWithoutARegistry runs the real containerd in this process
// with the embedded runc and shim, imports the pause and test images built
// from source, and runs a host-network pod through CRI.
func TestRunsAPodWithoutARegistry(t *testing.T) {
	id := testenv.RandomID(t)
	dataDir := t.TempDir()
	state := "/run/kedge-test-" + id
	t.Cleanup(func() { testenv.UnmountUnder(t, dataDir, state); os.RemoveAll(state) })
	socket := filepath.Join(state, "containerd.sock")

	bin, err := bundle.Install(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := agentcontainerd.Render(agentcontainerd.Config{
		Root: filepath.Join(dataDir, "containerd"), State: state, Socket: socket, BinDir: bin,
		CNIConfDir: filepath.Join(dataDir, "cni"), RegistryConfigDir: filepath.Join(dataDir, "registries.d"),
		RestrictOOMScoreAdj: !agentcontainerd.CanLowerOOMScoreAdj(),
	})
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dataDir, "config.toml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	c := &Containerd{ConfigFile: cfgFile, Socket: socket}
	testenv.Start(t, c.Run).WaitReady(60 * time.Second)
	ctx := t.Context()

	for _, name := range []string{"pause", "testimage"} {
		tarball := buildImage(t, name)
		got, err := images.ImportFile(ctx, socket, tarball)
		if err != nil {
			t.Fatal(err)
		}
		if want := "kedge.local/" + name + ":1"; len(got) != 1 || !strings.HasSuffix(got[0], want) {
			t.Fatalf("imported %v, want %s", got, want)
		}
	}

	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	imgs := runtimeapi.NewImageServiceClient(conn)
	if st, err := imgs.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: "kedge.local/testimage:1"}}); err != nil || st.Image == nil {
		t.Fatalf("CRI does not see the imported test image: %v %v", st, err)
	}

	cgroupParent := ownCgroup(t, "memory") + "/kedge-test-" + id
	t.Cleanup(func() { removeCgroups(t, cgroupParent) })
	podCfg := &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "default", Uid: "uid-" + id},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: cgroupParent,
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE},
			},
		},
		LogDirectory: filepath.Join(dataDir, "pods", id),
	}
	pod, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: podCfg})
	if err != nil {
		t.Fatalf("run pod sandbox: %v", err)
	}
	t.Cleanup(func() {
		rt.StopPodSandbox(context.Background(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod.PodSandboxId})
		rt.RemovePodSandbox(context.Background(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pod.PodSandboxId})
	})
	port := freePort(t)
	ctr, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId:  pod.PodSandboxId,
		SandboxConfig: podCfg,
		Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "web"},
			Image:    &runtimeapi.ImageSpec{Image: "kedge.local/testimage:1"},
			Envs:     []*runtimeapi.KeyValue{{Key: "PORT", Value: []byte(strconv.Itoa(port))}},
			LogPath:  "web.log",
		},
	})
	if err != nil {
		t.Fatalf("create container: %v", err)
	}
	if _, err := rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: ctr.ContainerId}); err != nil {
		t.Fatalf("start container: %v", err)
	}
	var body string
	testenv.WaitFor(t, 30*time.Second, "the container to answer", func() error {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		body = string(b)
		return err
	})
	host, _ := os.Hostname() // a host-network pod shares the host's UTS namespace
	if body != "hello from "+host+"\n" {
		t.Fatalf("container answered %q", body)
	}
	st, err := rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: ctr.ContainerId})
	if err != nil || st.Status.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("container status %v, %v", st, err)
	}
	// The config turns off containerd's per-method gRPC metrics (nothing
	// serves them): after these calls, none is registered.
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if strings.HasPrefix(f.GetName(), "grpc_server_") {
			t.Errorf("containerd registered gRPC metric %s", f.GetName())
		}
	}
	if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod.PodSandboxId}); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pod.PodSandboxId}); err != nil {
		t.Fatal(err)
	}
	list, err := rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if err != nil || len(list.Containers) != 0 {
		t.Fatalf("containers left after removing the pod: %v %v", list, err)
	}
}

// buildImage compiles scripts/images/<name> statically and packages it.
func buildImage(t *testing.T, name string) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-ldflags", "-s -w", "-o", bin, "github.com/kedge/kedge/scripts/images/"+name)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, out)
	}
	out := filepath.Join(dir, name+".tar")
	if err := ociimage.WriteTarball(bin, "kedge.local/"+name+":1", "", out); err != nil {
		t.Fatal(err)
	}
	return out
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ownCgroup returns this process's cgroup path in a v1 controller (or the
// unified hierarchy when the controller is not listed).
func ownCgroup(t *testing.T, controller string) string {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	unified := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == controller {
				return strings.TrimSuffix(parts[2], "/")
			}
		}
		if parts[1] == "" {
			unified = strings.TrimSuffix(parts[2], "/")
		}
	}
	return unified
}

// removeCgroups removes path (and what runc left below it) in every hierarchy.
func removeCgroups(t *testing.T, path string) {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, root := range append(roots, "/sys/fs/cgroup") {
		testenv.RemoveCgroupTree(t, filepath.Join(root, path))
	}
}

package apicache_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kedge/kedge/agent/uplink/apicache"
	"github.com/kedge/kedge/scripts/testenv"
	"github.com/kedge/kedge/server/integration/harness"
)

// forwarder is a TCP relay to a server that a test can cut (listener and
// connections closed, like a link going down) and restore on the same port.
type forwarder struct {
	addr, target string
	mu           sync.Mutex
	l            net.Listener
	conns        []net.Conn
}

func newForwarder(t *testing.T, target string) *forwarder {
	f := &forwarder{target: target}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = l.Addr().String()
	f.serve(l)
	t.Cleanup(f.cut)
	return f
}

func (f *forwarder) serve(l net.Listener) {
	f.mu.Lock()
	f.l = l
	f.mu.Unlock()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", f.target)
			if err != nil {
				c.Close()
				continue
			}
			f.mu.Lock()
			f.conns = append(f.conns, c, up)
			f.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
}

func (f *forwarder) cut() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.l != nil {
		f.l.Close()
		f.l = nil
	}
	for _, c := range f.conns {
		c.Close()
	}
	f.conns = nil
}

func (f *forwarder) restore(t *testing.T) {
	l, err := net.Listen("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	f.serve(l)
}

func startProxy(t *testing.T, p *apicache.Proxy) (stop func()) {
	r := testenv.Start(t, p.Run)
	r.WaitReady(10 * time.Second)
	return func() {
		if err := r.Stop(); err != nil {
			t.Errorf("proxy stopped with %v", err)
		}
	}
}

// TestServesNodeFromCacheWhenNoServerAnswers runs a real control plane and
// client-go informers (watch-list, protobuf like the kubelet) through the
// proxy: what they read is cached; with the link cut a fresh proxy on the
// same cache (an agent restarted offline) serves lists, objects and
// watch-lists, refuses writes; when the link returns, watches continue
// against the server; an object the server says is gone is not served in
// the next outage.
func TestServesNodeFromCacheWhenNoServerAnswers(t *testing.T) {
	dir := t.TempDir()
	srv := harness.StartInProcess(t, harness.NewConfig(t, filepath.Join(dir, "server")))
	tlsDir := filepath.Join(srv.Config.DataDir, "server", "tls")
	fwd := newForwarder(t, "127.0.0.1:"+strconv.Itoa(srv.Config.HTTPSListenPort))
	cacheDir := filepath.Join(dir, "cache")
	newProxy := func() *apicache.Proxy {
		return &apicache.Proxy{
			Addr: "127.0.0.1:" + strconv.Itoa(harness.FreePort(t)), Upstream: "https://" + fwd.addr,
			ServerCA: filepath.Join(tlsDir, "server-ca.crt"), ClientCA: filepath.Join(tlsDir, "client-ca.crt"),
			ServingCert: filepath.Join(tlsDir, "serving-kube-apiserver.crt"), ServingKey: filepath.Join(tlsDir, "serving-kube-apiserver.key"),
			Identities: []apicache.Identity{{CertFile: filepath.Join(tlsDir, "client-admin.crt"), KeyFile: filepath.Join(tlsDir, "client-admin.key")}},
			Dir:        cacheDir,
			Log:        slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		}
	}
	through := func(p *apicache.Proxy) kubernetes.Interface {
		return kubernetes.NewForConfigOrDie(&rest.Config{Host: "https://" + p.Addr,
			ContentConfig: rest.ContentConfig{ContentType: "application/vnd.kubernetes.protobuf", AcceptContentTypes: "application/vnd.kubernetes.protobuf,application/json"},
			TLSClientConfig: rest.TLSClientConfig{CAFile: filepath.Join(tlsDir, "server-ca.crt"),
				CertFile: filepath.Join(tlsDir, "client-admin.crt"), KeyFile: filepath.Join(tlsDir, "client-admin.key")}})
	}
	ctx := t.Context()
	direct := srv.Client
	create := func(name string) {
		t.Helper()
		if _, err := direct.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"k": name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	informer := func(c kubernetes.Interface) (has func(string) bool, stop func()) {
		ictx, cancel := context.WithCancel(ctx)
		f := informers.NewSharedInformerFactoryWithOptions(c, 0, informers.WithNamespace("default"))
		inf := f.Core().V1().ConfigMaps()
		inf.Informer()
		f.Start(ictx.Done())
		return func(name string) bool { _, err := inf.Lister().ConfigMaps("default").Get(name); return err == nil },
			func() { cancel(); f.Shutdown() }
	}

	create("cm1")
	create("cm2")
	p1 := newProxy()
	stop1 := startProxy(t, p1)
	c1 := through(p1)
	has, stopInformer := informer(c1)
	testenv.WaitUntil(t, 20*time.Second, "cm1 and cm2 listed through the proxy", func() bool { return has("cm1") && has("cm2") })
	create("cm3") // arrives by watch event
	testenv.WaitUntil(t, 20*time.Second, "cm3 watched through the proxy", func() bool { return has("cm3") })
	if _, err := c1.CoreV1().ConfigMaps("default").Get(ctx, "cm1", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	stopInformer()
	stop1() // flushes the cache

	fwd.cut()
	p2 := newProxy() // the agent starts again, with no server reachable
	startProxy(t, p2)
	c2 := through(p2)
	if p2.Online() {
		t.Fatal("the proxy thinks a server answers while the link is cut")
	}
	has2, stopInformer2 := informer(c2)
	defer stopInformer2()
	testenv.WaitUntil(t, 20*time.Second, "cm1..cm3 served from the cache", func() bool { return has2("cm1") && has2("cm2") && has2("cm3") })
	cm, err := c2.CoreV1().ConfigMaps("default").Get(ctx, "cm1", metav1.GetOptions{})
	if err != nil || cm.Data["k"] != "cm1" {
		t.Fatalf("GET cm1 offline: %v %v", cm, err)
	}
	list, err := c2.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) < 3 {
		t.Fatalf("LIST offline: %v items, %v", len(list.Items), err)
	}
	_, err = c2.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "offline"}}, metav1.CreateOptions{})
	if !apierrors.IsServiceUnavailable(err) {
		t.Fatalf("a write while offline: err = %v, want 503", err)
	}
	if _, err := c2.CoreV1().Secrets("default").Get(ctx, "never-read", metav1.GetOptions{}); !apierrors.IsServiceUnavailable(err) {
		t.Fatalf("an uncached read while offline: err = %v, want 503", err)
	}
	for _, f := range mustGlob(t, filepath.Join(cacheDir, "*.json")) {
		if st, err := os.Stat(f); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("cache file %s: %v %v, want mode 0600", f, st, err)
		}
	}

	// The link returns: the informer's held watch ends, and it follows the server again.
	start := time.Now()
	fwd.restore(t)
	testenv.WaitUntil(t, 10*time.Second, "the proxy online again", p2.Online)
	t.Logf("proxy online %.1fs after the link returned", time.Since(start).Seconds())
	create("cm4")
	testenv.WaitUntil(t, 30*time.Second, "cm4 watched after the link returned", func() bool { return has2("cm4") })

	// cm1 is deleted; a GET that the server answers 404 drops the cached
	// copy, so the next outage does not bring cm1 back.
	if err := direct.CoreV1().ConfigMaps("default").Delete(ctx, "cm1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c2.CoreV1().ConfigMaps("default").Get(ctx, "cm1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("GET of the deleted cm1 online: err = %v, want 404", err)
	}
	fwd.cut()
	testenv.WaitUntil(t, 30*time.Second, "the proxy offline again", func() bool { return !p2.Online() })
	if cm, err := c2.CoreV1().ConfigMaps("default").Get(ctx, "cm1", metav1.GetOptions{}); !apierrors.IsServiceUnavailable(err) {
		t.Fatalf("GET of the deleted cm1 offline: %v, err = %v; want 503 (nothing cached)", cm, err)
	}
}

func mustGlob(t *testing.T, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil || len(m) == 0 {
		t.Fatalf("no cache files (%v)", err)
	}
	return m
}

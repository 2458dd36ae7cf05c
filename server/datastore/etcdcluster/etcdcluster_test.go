package etcdcluster

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/kedge/kedge/embedded/etcd"
	"github.com/kedge/kedge/embedded/etcdcheck"
	"github.com/kedge/kedge/scripts/testenv"
	"github.com/kedge/kedge/server/join"
	"github.com/kedge/kedge/server/pki"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startEtcd runs a one-member embedded etcd and a Cluster on it; both stop
// when the test ends.
func startEtcd(t *testing.T, abandonedAfter time.Duration) *Cluster {
	t.Helper()
	dir := t.TempDir()
	loopback := net.ParseIP("127.0.0.1")
	files, err := pki.Ensure(pki.Request{Dir: filepath.Join(dir, "tls"), APIServerDNS: []string{"localhost"},
		Etcd: true, EtcdDNS: []string{"localhost"}, EtcdIPs: []net.IP{loopback}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	e := &etcd.Etcd{Member: "first", DataDir: filepath.Join(dir, "etcd"), ClientIPs: []net.IP{loopback}, ClientPort: freePort(t),
		PeerIP: loopback, PeerPort: freePort(t), Log: log,
		TLS: etcd.TLSFiles{ServerCA: files.EtcdServerCA, ServerCert: files.EtcdServingCert, ServerKey: files.EtcdServingKey,
			PeerCA: files.EtcdPeerCA, PeerCert: files.EtcdPeerCert, PeerKey: files.EtcdPeerKey,
			ClientCert: files.EtcdClientCert, ClientKey: files.EtcdClientKey}}
	c := &Cluster{Target: etcdcheck.Target{Endpoints: []string{e.ClientURL()}, CAFile: files.EtcdServerCA,
		CertFile: files.EtcdClientCert, KeyFile: files.EtcdClientKey}, PromoteInterval: 100 * time.Millisecond, AbandonedAfter: abandonedAfter, Log: log}
	// Stopped in reverse order by cleanup: the membership, then etcd.
	testenv.Start(t, e.Run).WaitReady(30 * time.Second)
	testenv.Start(t, c.Run).WaitReady(30 * time.Second)
	return c
}

func TestAddLearner(t *testing.T) {
	c := startEtcd(t, time.Hour)
	ctx := t.Context()
	members, err := c.AddLearner(ctx, "second", "https://192.0.2.2:2380")
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 2 || members[0].Name != "first" && members[1].Name != "first" {
		t.Fatalf("members %+v", members)
	}
	names := map[string]string{}
	for _, m := range members {
		names[m.Name] = m.PeerURLs[0]
	}
	if names["second"] != "https://192.0.2.2:2380" {
		t.Fatalf("the new member is not named for its initial cluster: %+v", members)
	}
	// A retried join of the same server finds its unstarted learner.
	again, err := c.AddLearner(ctx, "second", "https://192.0.2.2:2380")
	if err != nil || len(again) != 2 {
		t.Fatalf("retried join: %+v %v", again, err)
	}
	// One learner at a time: another server waits.
	if _, err := c.AddLearner(ctx, "third", "https://192.0.2.3:2380"); !errors.Is(err, join.ErrUnavailable) {
		t.Fatalf("second learner: %v, want ErrUnavailable", err)
	}
	// The name of a started member cannot be taken.
	if _, err := c.AddLearner(ctx, "first", "https://192.0.2.9:2380"); !errors.Is(err, join.ErrConflict) {
		t.Fatalf("taken name: %v, want ErrConflict", err)
	}
	// The learner that never starts costs no quorum: writes go on.
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := etcdcheck.Write(wctx, c.Target); err != nil {
		t.Fatalf("write with an unstarted learner: %v", err)
	}
}

func TestAbandonedLearnerIsRemoved(t *testing.T) {
	c := startEtcd(t, time.Second)
	if _, err := c.AddLearner(t.Context(), "second", "https://192.0.2.2:2380"); err != nil {
		t.Fatal(err)
	}
	// It never starts: after AbandonedAfter another server may join.
	testenv.WaitFor(t, 20*time.Second, "the unstarted learner to stop blocking joins", func() error {
		_, err := c.AddLearner(t.Context(), "third", "https://192.0.2.3:2380")
		if err != nil && !errors.Is(err, join.ErrUnavailable) {
			t.Fatalf("joining after an unstarted learner: %v", err)
		}
		return err
	})
}

package restore

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kedge/kedge/server/integration/harness"
	"github.com/kedge/kedge/server/snapshot"
)

func TestScheduledSnapshots(t *testing.T)     { scheduled(t, false) }
func TestScheduledEtcdSnapshots(t *testing.T) { scheduled(t, true) }

// scheduled runs a real server (the binary, with the flags) whose schedule fires every 2 seconds with
// a retention of 2: scheduled snapshots appear, the oldest are pruned,
// and an on-demand snapshot in the same directory survives.
func scheduled(t *testing.T, etcd bool) {
	dataDir := t.TempDir()
	snapDir := filepath.Join(t.TempDir(), "snaps")
	c := harness.NewConfig(t, dataDir)
	c.ClusterInit = etcd
	c.SnapshotScheduleCron, c.SnapshotRetention, c.SnapshotDir = "@every 2s", 2, snapDir
	srv := harness.StartBinary(t, c)
	// The scheduler starts after the components before it are ready.
	select {
	case <-srv.AllReady:
	case <-time.After(2 * time.Minute):
		t.Fatal("the server's components are not all ready after 2 minutes")
	}

	onDemand, err := snapshot.Save(t.Context(), snapshot.Request{DataDir: dataDir, Dir: snapDir, Name: snapshot.DefaultName, Node: "kedge-test", Now: time.Now(),
		EtcdEndpoint: snapshot.EtcdEndpoint(c.EtcdClientPort)})
	if err != nil {
		t.Fatal(err)
	}
	scheduled := func() []string {
		files, err := snapshot.List(snapDir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, f := range files {
			if strings.HasPrefix(f.Name, snapshot.ScheduledName+"-") {
				out = append(out, f.Name)
			}
		}
		return out
	}
	var first string
	harness.WaitFor(t, time.Minute, "a scheduled snapshot", func() error {
		if s := scheduled(); len(s) > 0 {
			first = s[0]
			return nil
		}
		return fmt.Errorf("none in %s", snapDir)
	})
	harness.WaitFor(t, time.Minute, "the first scheduled snapshot pruned", func() error {
		s := scheduled()
		if slices.Contains(s, first) {
			return fmt.Errorf("%s is still there: %v", first, s)
		}
		if len(s) > 2 {
			return fmt.Errorf("%d scheduled snapshots kept, want at most 2: %v", len(s), s)
		}
		return nil
	})
	if _, err := os.Stat(onDemand); err != nil {
		t.Fatalf("the on-demand snapshot was pruned: %v", err)
	}
}

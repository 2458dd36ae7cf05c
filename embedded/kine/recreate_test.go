package kine

import (
	"context"
	"fmt"
	"sync"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// create is the apiserver's create: a put only if the key does not exist.
func create(ctx context.Context, cli *clientv3.Client, key, val string) (int64, error) {
	resp, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, val)).Commit()
	if err != nil {
		return 0, err
	}
	if !resp.Succeeded {
		return 0, fmt.Errorf("create %s: key exists", key)
	}
	return resp.Header.Revision, nil
}

// remove is the apiserver's delete of key at revision rev.
func remove(ctx context.Context, cli *clientv3.Client, key string, rev int64) error {
	resp, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
		Then(clientv3.OpDelete(key)).Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		return fmt.Errorf("delete %s at %d: revision moved", key, rev)
	}
	return nil
}

// TestRecreateAnswersItsOwnRevision: a create of a key that existed and was
// deleted answers the revision of the row it wrote, while other writers
// move the store's revision on (kine's own Create answers another row's
// revision there now and then; the apiserver then returns a resourceVersion
// whose update fails with 409 Conflict). Without createRevision this failed
// within the first 10 rounds on every run here.
func TestRecreateAnswersItsOwnRevision(t *testing.T) {
	r := start(t)
	ctx := t.Context()
	bg, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; bg.Err() == nil; i++ {
				k := fmt.Sprintf("/registry/events/w%d-%d", w, i)
				if rev, err := create(bg, r.cli, k, "x"); err == nil {
					remove(bg, r.cli, k, rev)
				}
			}
		})
	}
	defer func() { stop(); wg.Wait() }()
	for round := range 100 {
		revs := map[string]int64{}
		for _, k := range []string{"/registry/pc/p1", "/registry/pc/p2"} {
			rev, err := create(ctx, r.cli, k, fmt.Sprint(round))
			if err != nil {
				t.Fatal(err)
			}
			got, err := r.cli.Get(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			if m := got.Kvs[0].ModRevision; m != rev {
				t.Fatalf("round %d: create of %s answered revision %d, the key's is %d", round, k, rev, m)
			}
			revs[k] = rev
		}
		for k, rev := range revs {
			if err := remove(ctx, r.cli, k, rev); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
}

package kine

import (
	"context"
	"sync"

	"github.com/k3s-io/kine/pkg/drivers"
	"github.com/k3s-io/kine/pkg/server"
)

// sqlSchemes are kine's drivers built on its log-structured SQL backend,
// whose Create has the defect createRevision works around.
var sqlSchemes = []string{"sqlite", "litestream", "postgres", "postgresql", "mysql"}

// init wraps the backends of sqlSchemes in createRevision. kine's endpoint
// package, imported above, registers the drivers first.
func init() {
	for _, scheme := range sqlSchemes {
		newBackend, ok := drivers.Get(scheme)
		if !ok {
			continue
		}
		drivers.Register(scheme, func(ctx context.Context, wg *sync.WaitGroup, cfg *drivers.Config) (bool, server.Backend, error) {
			leaderElect, backend, err := newBackend(ctx, wg, cfg)
			if err != nil || backend == nil {
				return leaderElect, backend, err
			}
			return leaderElect, createRevision{backend}, nil
		})
	}
}

// createRevision makes a create answer the revision of the row it wrote.
//
// kine v0.17.5's LogStructured.Create, when the key existed before and was
// deleted, inserts the new row but answers the store's current revision
// instead of that row's (the second insert's revision lands in a shadowed
// variable). With other writes in flight that is another row's revision, and
// the apiserver hands it to the client as the object's resourceVersion: the
// client's next update with that object fails with 409 Conflict (seen in the
// conformance suite's PriorityClass spec).
//
// The created key's CreateRevision is the revision of the row the create
// wrote, and later updates keep it, so one keys-only read after a successful
// create answers it. If the key is already gone again, the create's own
// answer is kept.
type createRevision struct {
	server.Backend
}

// Create implements server.Backend.
func (c createRevision) Create(ctx context.Context, key string, value []byte, lease int64) (int64, error) {
	rev, err := c.Backend.Create(ctx, key, value, lease)
	if err != nil {
		return rev, err
	}
	if _, kv, gerr := c.Backend.Get(ctx, key, 0, true); gerr == nil && kv != nil && kv.CreateRevision > 0 {
		return kv.CreateRevision, nil
	}
	return rev, nil
}

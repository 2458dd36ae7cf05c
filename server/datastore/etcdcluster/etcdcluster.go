// Package etcdcluster manages the membership of the servers' embedded etcd
// cluster from one server: it adds joining servers as learners (non-voting
// members, so that a new member that is still starting cannot cost the
// cluster its quorum) and promotes learners to voting members once they have
// caught up with the leader.
package etcdcluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kedge/kedge/embedded/component"
	"github.com/kedge/kedge/embedded/etcdcheck"
	"github.com/kedge/kedge/server/join"
	"github.com/kedge/kedge/shared/joinapi"
)

// Cluster is a component that holds one etcd client to the local member for
// its lifetime. AddLearner may be called concurrently from the join API;
// before Run is ready and after it returns it answers join.ErrUnavailable.
type Cluster struct {
	Target etcdcheck.Target
	// PromoteInterval is how often learners are looked for (default 2 s).
	PromoteInterval time.Duration
	// AbandonedAfter is how long a learner may stay unstarted before it is
	// removed (default 10 min): a joiner that never started would otherwise
	// block every later join (etcd takes one learner at a time).
	AbandonedAfter time.Duration
	Log            *slog.Logger

	mu  sync.Mutex // serialises membership changes made here
	cli *clientv3.Client
	// unstarted records when each unstarted learner was first seen; only
	// the Run goroutine uses it.
	unstarted map[uint64]time.Time
}

var (
	_ component.Component = (*Cluster)(nil)
	_ join.Members        = (*Cluster)(nil)
)

// Name implements component.Component.
func (c *Cluster) Name() string { return "etcd-membership" }

// Run opens the client, is ready once it lists the members, then promotes
// caught-up learners every PromoteInterval until ctx ends.
func (c *Cluster) Run(ctx context.Context, ready func()) error {
	cli, err := etcdcheck.Client(ctx, c.Target)
	if err != nil {
		return fmt.Errorf("etcd client: %w", err)
	}
	defer cli.Close()
	interval := c.PromoteInterval
	if interval <= 0 {
		interval = 2 * time.Second
	}
	listed := false
	for !listed {
		attempt, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := cli.MemberList(attempt)
		cancel()
		listed = err == nil
		if !listed {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	c.mu.Lock()
	c.cli = cli
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.cli = nil
		c.mu.Unlock()
	}()
	ready()
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		c.promote(ctx, cli)
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// promote tries once to promote every started learner. A learner that has
// not caught up yet is refused by etcd and tried again on the next tick.
func (c *Cluster) promote(ctx context.Context, cli *clientv3.Client) {
	attempt, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	list, err := cli.MemberList(attempt, clientv3.WithSerializable())
	if err != nil {
		return
	}
	if c.unstarted == nil {
		c.unstarted = map[uint64]time.Time{}
	}
	seen := map[uint64]bool{}
	for _, m := range list.Members {
		if !m.IsLearner {
			continue
		}
		if m.Name == "" {
			seen[m.ID] = true
			c.removeIfAbandoned(attempt, cli, m)
			continue
		}
		_, err := cli.MemberPromote(attempt, m.ID)
		switch {
		case err == nil:
			c.Log.Info("promoted etcd learner to voting member", "member", m.Name)
		case errors.Is(err, rpctypes.ErrMemberLearnerNotReady), errors.Is(err, rpctypes.ErrMemberNotLearner), errors.Is(err, rpctypes.ErrMemberNotFound):
			c.Log.Debug("etcd learner not promoted yet", "member", m.Name, "reason", err)
		default:
			c.Log.Debug("promote etcd learner", "member", m.Name, "error", err)
		}
	}
	for id := range c.unstarted {
		if !seen[id] {
			delete(c.unstarted, id)
		}
	}
}

// removeIfAbandoned removes an unstarted learner first seen more than
// AbandonedAfter ago. Learners do not vote, so this never costs quorum.
func (c *Cluster) removeIfAbandoned(ctx context.Context, cli *clientv3.Client, m *etcdserverpb.Member) {
	first, ok := c.unstarted[m.ID]
	if !ok {
		c.unstarted[m.ID] = time.Now()
		return
	}
	after := c.AbandonedAfter
	if after <= 0 {
		after = 10 * time.Minute
	}
	if time.Since(first) < after {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := cli.MemberRemove(ctx, m.ID)
	switch {
	case err == nil:
		c.Log.Warn("removed an etcd learner that never started; its server may join again", "peer", m.PeerURLs, "unstarted_for", time.Since(first).Round(time.Second))
		delete(c.unstarted, m.ID)
	case errors.Is(err, rpctypes.ErrMemberNotFound):
		delete(c.unstarted, m.ID)
	default:
		c.Log.Debug("remove abandoned etcd learner", "peer", m.PeerURLs, "error", err)
	}
}

// AddLearner implements join.Members.
func (c *Cluster) AddLearner(ctx context.Context, name, peerURL string) ([]joinapi.EtcdMember, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cli == nil {
		return nil, fmt.Errorf("%w: this server's etcd is not ready", join.ErrUnavailable)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	list, err := c.cli.MemberList(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: list etcd members: %v", join.ErrUnavailable, err)
	}
	learners := 0
	for _, m := range list.Members {
		if m.IsLearner {
			learners++
		}
		if slices.Contains(m.PeerURLs, peerURL) {
			if m.Name == "" {
				// An earlier join of this server added it but it never started.
				return named(list.Members, m.ID, name), nil
			}
			return nil, fmt.Errorf("%w: %s is already the peer URL of etcd member %q; remove that member (or its server's data) before joining again",
				join.ErrConflict, peerURL, m.Name)
		}
		if m.Name == name {
			return nil, fmt.Errorf("%w: a server named %q is already an etcd member (peer %v); use another --node-name or remove that member",
				join.ErrConflict, name, m.PeerURLs)
		}
	}
	// etcd allows one learner at a time. It checks that only when it applies
	// the change, after raft has taken it, which leaves the rejected
	// member's ID behind in the leader's peer transport; so check first.
	if learners > 0 {
		return nil, fmt.Errorf("%w: another server is still catching up as an etcd learner; retry", join.ErrUnavailable)
	}
	added, err := c.cli.MemberAddAsLearner(ctx, []string{peerURL})
	switch {
	case errors.Is(err, rpctypes.ErrTooManyLearners):
		return nil, fmt.Errorf("%w: another server is still catching up as an etcd learner; retry", join.ErrUnavailable)
	case errors.Is(err, rpctypes.ErrUnhealthy):
		// etcd refuses new members until every voting member has been
		// active for a while, as right after a promotion.
		return nil, fmt.Errorf("%w: the etcd cluster is not healthy yet; retry", join.ErrUnavailable)
	}
	if err != nil {
		return nil, fmt.Errorf("add etcd learner: %w", err)
	}
	return named(added.Members, added.Member.ID, name), nil
}

// named lists members for the new member's initial cluster: the new one
// under its own name, members that have not started yet (no name) under
// their ID.
func named(members []*etcdserverpb.Member, self uint64, name string) []joinapi.EtcdMember {
	out := make([]joinapi.EtcdMember, 0, len(members))
	for _, m := range members {
		n := m.Name
		switch {
		case m.ID == self:
			n = name
		case n == "":
			n = "member-" + strconv.FormatUint(m.ID, 16)
		}
		out = append(out, joinapi.EtcdMember{Name: n, PeerURLs: m.PeerURLs})
	}
	return out
}

package raft

import (
	"errors"
	"testing"
	"time"
)

// openNonVoter opens a broker-only node that joins c's voters.
func openNonVoter(t *testing.T, c *staticCluster, id int32, addr, dir string) (*Node, error) {
	t.Helper()
	return Open(Config{NodeID: id, DataDir: dir, BindAddr: addr, Voters: c.voters, NonVoter: true,
		BrokerSessionTimeout: c.session, Logger: testLogger(),
		HeartbeatTimeout: 200 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond, LeaderLeaseTimeout: 100 * time.Millisecond})
}

// TestNonVoterJoins: a broker-only node joins a running three-voter
// cluster, receives the metadata state, applies commands through the
// leader, never counts toward the quorum, and after a restart on its data
// dir is a member again without a second configuration change.
func TestNonVoterJoins(t *testing.T) {
	ctx := testCtx(t)
	c := newStaticCluster(t, 3, 0)
	if _, err := c.nodes[0].Apply(ctx, CreateTopic{Topic: topic("before", idA, 1, 1, 2, 3)}); err != nil {
		t.Fatal(err)
	}
	addr, dir := freeAddrs(t, 1)[0], t.TempDir()
	nv, err := openNonVoter(t, c, 4, addr, dir)
	if err != nil {
		t.Fatalf("open non-voter: %v", err)
	}
	t.Cleanup(func() { _ = nv.Close() })
	if err := nv.WaitLeader(ctx); err != nil {
		t.Fatalf("non-voter wait leader: %v", err)
	}
	if nv.State().Topics["before"] == nil || nv.State().ClusterID != c.nodes[0].State().ClusterID {
		t.Fatalf("non-voter state lacks what was applied before it joined: %+v", nv.State().Topics)
	}
	srv, err := c.leader().Servers()
	if err != nil {
		t.Fatal(err)
	}
	var voters, nonVoters int
	for _, s := range srv {
		if s.Voter {
			voters++
		} else if s.ID == 4 && s.Addr == addr {
			nonVoters++
		}
	}
	if voters != 3 || nonVoters != 1 {
		t.Fatalf("configuration %+v: want 3 voters and non-voter 4 at %s", srv, addr)
	}
	// Commands from the non-voter go through the leader.
	res, err := nv.Apply(ctx, CreateTopic{Topic: topic("from-nv", idB, 1, 4)})
	if err != nil || nv.State().Version < res.Index {
		t.Fatalf("apply on non-voter: %+v %v", res, err)
	}
	if nv.IsLeader() {
		t.Fatal("a non-voter leads")
	}

	// Restart on the same data dir: still a member, state restored.
	if err := nv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.nodes[0].Apply(ctx, CreateTopic{Topic: topic("while-down", idC, 1, 1)}); err != nil {
		t.Fatal(err)
	}
	nv2, err := openNonVoter(t, c, 4, addr, dir)
	if err != nil {
		t.Fatalf("reopen non-voter: %v", err)
	}
	t.Cleanup(func() { _ = nv2.Close() })
	if err := nv2.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	for nv2.State().Topics["while-down"] == nil {
		select {
		case <-ctx.Done():
			t.Fatal("restarted non-voter never caught up")
		case <-time.After(20 * time.Millisecond):
		}
	}
	if nv2.State().Topics["from-nv"] == nil {
		t.Fatal("restarted non-voter lost its state")
	}
}

// TestNonVoterRefused: a node cannot join under a voter's id or another
// member's address, and a non-voter configuration must not list itself.
func TestNonVoterRefused(t *testing.T) {
	ctx := testCtx(t)
	c := newStaticCluster(t, 3, 0)
	l := c.leader()
	if l == nil {
		t.Fatal("no leader")
	}
	for _, tc := range []struct {
		name string
		j    joinRequest
	}{
		{"voter id", joinRequest{id: 2, addr: "127.0.0.1:1"}},
		{"voter address", joinRequest{id: 9, addr: c.voters[1].Addr}},
		{"no address", joinRequest{id: 9}},
	} {
		if err := l.joinLocal(ctx, tc.j); !errors.Is(err, ErrInvalidVoters) {
			t.Errorf("%s: join %+v: %v, want ErrInvalidVoters", tc.name, tc.j, err)
		}
	}
	// A follower relays once; a relayed request to a follower is refused.
	f := c.follower(ctx)
	if err := f.joinLocal(ctx, joinRequest{id: 2, addr: "127.0.0.1:1"}); !errors.Is(err, ErrInvalidVoters) {
		t.Errorf("relayed join of a voter id: %v, want the leader's ErrInvalidVoters", err)
	}
	if err := f.joinLocal(ctx, joinRequest{id: 9, addr: "127.0.0.1:1", relayed: true}); !errors.Is(err, ErrNotLeader) {
		t.Errorf("twice-relayed join: %v, want ErrNotLeader", err)
	}
	if _, err := Open(Config{NodeID: 2, DataDir: t.TempDir(), BindAddr: "127.0.0.1:0", Voters: c.voters, NonVoter: true}); !errors.Is(err, ErrInvalidVoters) {
		t.Errorf("non-voter listed among the voters: %v", err)
	}
	if _, err := Open(Config{NodeID: 9, DataDir: t.TempDir(), BindAddr: "127.0.0.1:0", NonVoter: true}); !errors.Is(err, ErrInvalidVoters) {
		t.Errorf("non-voter without voters: %v", err)
	}
}

package raft

import (
	"context"
	"errors"
	"reflect"
	"runtime"
	"testing"
	"time"
)

func openMember(t *testing.T, id int32, bootstrap bool) *Node {
	t.Helper()
	n, err := Open(Config{NodeID: id, DataDir: t.TempDir(), BindAddr: "127.0.0.1:0", Bootstrap: bootstrap, Logger: testLogger(),
		HeartbeatTimeout: 200 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond, LeaderLeaseTimeout: 100 * time.Millisecond,
		CommitTimeout: 10 * time.Millisecond})
	if err != nil {
		t.Fatalf("open node %d: %v", id, err)
	}
	return n
}

// waitState blocks until cond holds for n's state or ctx ends; it waits on
// the node's notifications, never polls.
func waitState(ctx context.Context, t *testing.T, n *Node, what string, cond func(*State) bool) *State {
	t.Helper()
	ch, cancel := n.Subscribe()
	defer cancel()
	for {
		if s := n.State(); cond(s) {
			return s
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("node %d: waiting for %s: %v (state %+v)", n.ID(), what, ctx.Err(), n.State())
		}
	}
}

func TestCluster3(t *testing.T) {
	base := runtime.NumGoroutine()
	ctx := testCtx(t)
	n1 := openMember(t, 1, true)
	n2 := openMember(t, 2, false)
	n3 := openMember(t, 3, false)
	n4 := openMember(t, 4, false)
	nodes := []*Node{n1, n2, n3, n4}
	defer func() {
		for _, n := range nodes {
			_ = n.Close()
		}
	}()
	if err := n1.AddVoter(2, n2.Addr()); err != nil {
		t.Fatal(err)
	}
	if err := n1.AddVoter(3, n3.Addr()); err != nil {
		t.Fatal(err)
	}
	if err := n1.AddNonvoter(4, n4.Addr()); err != nil {
		t.Fatal(err)
	}
	if err := n2.AddVoter(5, "127.0.0.1:1"); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("AddVoter on a follower: %v", err)
	}

	ct, err := NewCreateTopic("events", 4, 1, nil, []Broker{{ID: 1}, {ID: 2}, {ID: 3}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n1.Apply(ctx, ct); err != nil {
		t.Fatal(err)
	}
	if _, err := n1.Apply(ctx, AllocateProducerIDs{Start: 0, Count: 50}); err != nil {
		t.Fatal(err)
	}
	want := n1.State()
	for _, n := range nodes[1:] {
		got := waitState(ctx, t, n, "leader's commands", func(s *State) bool { return s.Version >= want.Version })
		if !reflect.DeepEqual(withoutVersion(got), withoutVersion(want)) {
			t.Fatalf("node %d state differs from leader\n got %+v\nwant %+v", n.ID(), got, want)
		}
		if id, ok := n.LeaderID(); !ok || id != 1 || got.ControllerID != 1 {
			t.Fatalf("node %d sees leader %d %v, controller %d", n.ID(), id, ok, got.ControllerID)
		}
		if n.IsLeader() {
			t.Fatalf("node %d claims leadership", n.ID())
		}
		if _, err := n.Apply(ctx, AllocateProducerIDs{Start: 50, Count: 1}); !errors.Is(err, ErrNotLeader) {
			t.Fatalf("apply on follower %d: %v", n.ID(), err)
		}
	}

	// Kill the leader; a voter takes over with the state intact.
	if err := n1.Close(); err != nil {
		t.Fatal(err)
	}
	var leader *Node
	s := waitState(ctx, t, n2, "a new leader", func(s *State) bool { return s.ControllerID == 2 || s.ControllerID == 3 })
	for _, n := range []*Node{n2, n3} {
		if n.ID() == s.ControllerID {
			leader = n
		}
	}
	if err := leader.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	if !leader.IsLeader() {
		t.Fatalf("node %d is not leader", leader.ID())
	}
	if got := leader.State(); !reflect.DeepEqual(got.Topics, want.Topics) || got.ClusterID != want.ClusterID || got.NextProducerID != 50 {
		t.Fatalf("state after failover differs: %+v", got)
	}
	res, err := leader.Apply(ctx, AllocateProducerIDs{Start: 50, Count: 10})
	if err != nil || res.ProducerIDs.Start != 50 {
		t.Fatalf("apply on new leader: %+v %v", res, err)
	}
	if err := leader.RemoveServer(1); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*Node{n2, n3, n4} {
		waitState(ctx, t, n, "the new leader's command", func(s *State) bool { return s.NextProducerID == 60 })
	}
	for _, n := range nodes {
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
	}
	waitGoroutines(t, base)
}

func TestWaitLeaderTimesOut(t *testing.T) {
	n := openMember(t, 1, false) // no bootstrap, nobody adds it: never a leader
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := n.WaitLeader(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitLeader: %v", err)
	}
	if _, err := n.Apply(context.Background(), InitCluster{ClusterID: "x"}); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("Apply: %v", err)
	}
	// Close wakes a waiter instead of leaving it to its deadline.
	done := make(chan error, 1)
	go func() { done <- n.WaitLeader(context.Background()) }()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("WaitLeader across Close: %v", err)
	}
}

// TestClusterJoinFromSnapshot: a node added after the leader compacted its
// log receives the state by InstallSnapshot (FSM.Restore over the network),
// then follows the log from there.
func TestClusterJoinFromSnapshot(t *testing.T) {
	ctx := testCtx(t)
	n1, err := Open(Config{NodeID: 1, DataDir: t.TempDir(), BindAddr: "127.0.0.1:0", Bootstrap: true, Logger: testLogger(),
		HeartbeatTimeout: 200 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond, LeaderLeaseTimeout: 100 * time.Millisecond,
		TrailingLogs: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer n1.Close()
	for i := range 30 {
		if _, err := n1.Apply(ctx, AllocateProducerIDs{Start: int64(i), Count: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := n1.r.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	if first, err := n1.store.FirstIndex(); err != nil || first < 10 {
		t.Fatalf("log not compacted: first index %d %v", first, err)
	}
	n2 := openMember(t, 2, false)
	defer n2.Close()
	if err := n1.AddNonvoter(2, n2.Addr()); err != nil {
		t.Fatal(err)
	}
	if _, err := n1.Apply(ctx, AllocateProducerIDs{Start: 30, Count: 5}); err != nil {
		t.Fatal(err)
	}
	want := n1.State()
	got := waitState(ctx, t, n2, "snapshot and tail", func(s *State) bool { return s.Version >= want.Version })
	if !reflect.DeepEqual(withoutVersion(got), withoutVersion(want)) || got.NextProducerID != 35 {
		t.Fatalf("joined node state\n got %+v\nwant %+v", got, want)
	}
}

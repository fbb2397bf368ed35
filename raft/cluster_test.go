package raft

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"testing"
	"time"
)

func openMember(t *testing.T, id int32, bootstrap bool) *Node {
	t.Helper()
	n, err := Open(Config{NodeID: id, DataDir: t.TempDir(), BindAddr: "127.0.0.1:0", Bootstrap: bootstrap, Logger: testLogger()})
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

// onLeader runs op on whichever node leads, again after every leadership
// change while op fails with ErrNotLeader or ErrLeadershipLost (the
// documented retryable outcomes; every op used with it is idempotent). On a
// loaded machine an election can repeat, so tests must not assume the
// first winner keeps the lead. It returns the node op succeeded on.
func onLeader(ctx context.Context, t *testing.T, nodes []*Node, what string, op func(*Node) error) *Node {
	t.Helper()
	// Every leadership change reaches every node's ControllerID, so the
	// first node's notifications are enough to know when to look again.
	ch, cancel := nodes[0].Subscribe()
	defer cancel()
	for {
		for _, n := range nodes {
			if !n.IsLeader() {
				continue
			}
			err := op(n)
			if err == nil {
				return n
			}
			if !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrLeadershipLost) {
				t.Fatalf("%s on node %d: %v", what, n.ID(), err)
			}
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("%s: no leader accepted it: %v", what, ctx.Err())
		}
	}
}

// replicated is the part of a state every replica must agree on.
func replicated(s *State) State {
	c := withoutVersion(s)
	c.ControllerID = 0
	return c
}

func TestCluster3(t *testing.T) {
	base := runtime.NumGoroutine()
	ctx := testCtx(t)
	n1 := openMember(t, 1, true)
	n2 := openMember(t, 2, false)
	n3 := openMember(t, 3, false)
	n4 := openMember(t, 4, false) // non-voter: never leads
	nodes := []*Node{n1, n2, n3, n4}
	voters := nodes[:3]
	defer func() {
		for _, n := range nodes {
			_ = n.Close()
		}
	}()
	onLeader(ctx, t, voters, "add voter 2", func(l *Node) error { return l.AddVoter(2, n2.Addr()) })
	onLeader(ctx, t, voters, "add voter 3", func(l *Node) error { return l.AddVoter(3, n3.Addr()) })
	onLeader(ctx, t, voters, "add nonvoter 4", func(l *Node) error { return l.AddNonvoter(4, n4.Addr()) })
	if err := n4.AddVoter(5, "127.0.0.1:1"); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("AddVoter on a non-voter: %v", err)
	}
	// A non-voter forwards to the leader, and its own state has the entry
	// when Apply returns.
	if res, err := n4.Apply(ctx, AllocateProducerIDs{Start: 0, Count: 1}); err != nil {
		t.Fatalf("Apply on a non-voter: %v", err)
	} else if s := n4.State(); s.Version < res.Index || s.NextProducerID != 1 {
		t.Fatalf("non-voter state after its forwarded Apply: version %d < index %d or next producer id %d", s.Version, res.Index, s.NextProducerID)
	}

	// Leadership moves to another voter on request.
	before := onLeader(ctx, t, voters, "barrier", func(l *Node) error { return l.Barrier(ctx) })
	wantSrv := []Server{{1, n1.Addr(), true}, {2, n2.Addr(), true}, {3, n3.Addr(), true}, {4, n4.Addr(), false}}
	if srv, err := before.Servers(); err != nil || !reflect.DeepEqual(srv, wantSrv) {
		t.Fatalf("servers %+v (%v), want %+v", srv, err, wantSrv)
	}
	if err := before.TransferLeadership(); err != nil {
		t.Fatalf("transfer leadership: %v", err)
	}
	after := onLeader(ctx, t, voters, "barrier after transfer", func(l *Node) error { return l.Barrier(ctx) })
	t.Logf("leadership moved from %d to %d", before.ID(), after.ID())

	ct, err := NewCreateTopic("events", 4, 3, map[string]string{"k": "v1"}, []Broker{{ID: 1}, {ID: 2}, {ID: 3}})
	if err != nil {
		t.Fatal(err)
	}
	leader := onLeader(ctx, t, voters, "create topic", func(l *Node) error { _, err := l.Apply(ctx, ct); return err })
	leader = onLeader(ctx, t, voters, "register broker", func(l *Node) error {
		_, err := l.Apply(ctx, RegisterBroker{ID: 1, Host: "h", Port: 1})
		return err
	})
	want := leader.State()
	for _, n := range nodes {
		if n == leader {
			continue
		}
		got := waitState(ctx, t, n, "the leader's commands", func(s *State) bool { return s.Version >= want.Version })
		if !reflect.DeepEqual(replicated(got), replicated(want)) {
			t.Fatalf("node %d state differs from leader\n got %+v\nwant %+v", n.ID(), got, want)
		}
		// Forwarded: the block starting at 0 is long gone, and the typed
		// error survives the trip back from the leader.
		if _, err := n.Apply(ctx, AllocateProducerIDs{Start: 0, Count: 1}); !errors.Is(err, ErrStaleProducerIDBlock) {
			t.Fatalf("apply on follower %d: %v", n.ID(), err)
		}
		// Caught up with the log, the member knows the configuration too.
		if srv, err := n.Servers(); err != nil || !reflect.DeepEqual(srv, wantSrv) {
			t.Fatalf("node %d: servers %+v (%v), want %+v", n.ID(), srv, err, wantSrv)
		}
	}

	// Stop the leader; a remaining voter takes over with the state intact.
	if err := leader.Close(); err != nil {
		t.Fatal(err)
	}
	var live, liveVoters []*Node
	for _, n := range nodes {
		if n != leader {
			live = append(live, n)
			if n != n4 {
				liveVoters = append(liveVoters, n)
			}
		}
	}
	alter := AlterConfigs{Resource: ResourceTopic, Name: "events", Set: map[string]string{"k": "v2"}}
	next := onLeader(ctx, t, liveVoters, "alter configs after failover", func(l *Node) error { _, err := l.Apply(ctx, alter); return err })
	if next == leader {
		t.Fatal("closed node still leads")
	}
	got := next.State()
	if got.ClusterID != want.ClusterID || got.Topics["events"].ID != ct.Topic.ID ||
		!reflect.DeepEqual(got.Topics["events"].Partitions, want.Topics["events"].Partitions) || !reflect.DeepEqual(got.Brokers[1], want.Brokers[1]) {
		t.Fatalf("state after failover differs:\n got %+v\nwant %+v", got, want)
	}
	onLeader(ctx, t, liveVoters, "remove old leader", func(l *Node) error { return l.RemoveServer(leader.ID()) })
	for _, n := range live {
		s := waitState(ctx, t, n, "the new leader's command", func(s *State) bool { return s.Topics["events"].Configs["k"] == "v2" })
		if s.ControllerID == leader.ID() {
			t.Fatalf("node %d still names the closed node as controller", n.ID())
		}
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
	// Without any leader a forwarded Apply gives up at its deadline.
	actx, acancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer acancel()
	if _, err := n.Apply(actx, InitCluster{ClusterID: "x"}); !errors.Is(err, ErrNotLeader) || !errors.Is(err, context.DeadlineExceeded) {
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

// TestClusterRestart stops every member of a three-voter cluster and starts
// them again on the same directories and addresses: they elect a leader and
// hold the same state (snapshot on one node, log on the others).
func TestClusterRestart(t *testing.T) {
	ctx := testCtx(t)
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	open := func(i int, addr string) *Node {
		n, err := Open(Config{NodeID: int32(i + 1), DataDir: dirs[i], BindAddr: addr, Bootstrap: i == 0, Logger: testLogger()})
		if err != nil {
			t.Fatalf("open node %d: %v", i+1, err)
		}
		return n
	}
	nodes := []*Node{open(0, "127.0.0.1:0"), open(1, "127.0.0.1:0"), open(2, "127.0.0.1:0")}
	addrs := []string{nodes[0].Addr(), nodes[1].Addr(), nodes[2].Addr()}
	closeAll := func() {
		for _, n := range nodes {
			if err := n.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	onLeader(ctx, t, nodes, "add voter 2", func(l *Node) error { return l.AddVoter(2, addrs[1]) })
	onLeader(ctx, t, nodes, "add voter 3", func(l *Node) error { return l.AddVoter(3, addrs[2]) })
	for i := range 10 {
		ct := CreateTopic{Topic: topic(fmt.Sprintf("t%d", i), [16]byte{byte(i + 1)}, 2, 1, 2, 3)}
		onLeader(ctx, t, nodes, "create topic", func(l *Node) error { _, err := l.Apply(ctx, ct); return err })
	}
	l := onLeader(ctx, t, nodes, "barrier", func(l *Node) error { return l.Barrier(ctx) })
	want := l.State()
	for _, n := range nodes {
		waitState(ctx, t, n, "all topics", func(s *State) bool { return s.Version >= want.Version })
	}
	if err := nodes[1].r.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	closeAll()

	nodes = []*Node{open(0, addrs[0]), open(1, addrs[1]), open(2, addrs[2])}
	defer closeAll()
	onLeader(ctx, t, nodes, "create topic after restart", func(l *Node) error {
		_, err := l.Apply(ctx, CreateTopic{Topic: topic("after", idC, 1, 1)})
		return err
	})
	for _, n := range nodes {
		got := waitState(ctx, t, n, "state after restart", func(s *State) bool { return len(s.Topics) == 11 })
		if got.ClusterID != want.ClusterID || !reflect.DeepEqual(got.Topics["t3"], want.Topics["t3"]) {
			t.Fatalf("node %d after restart: %+v", n.ID(), got)
		}
	}
}

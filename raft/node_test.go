package raft

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

// testLogger shows raft's warnings under -v only: elections and refused
// dials to a stopped leader are expected in these tests.
func testLogger() *slog.Logger {
	var w io.Writer = io.Discard
	if testing.Verbose() {
		w = os.Stderr
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func openSingle(t *testing.T, dir string) *Node {
	t.Helper()
	n, err := Open(Config{NodeID: 1, DataDir: dir, BindAddr: "127.0.0.1:0", Bootstrap: true, Logger: testLogger(),
		HeartbeatTimeout: 100 * time.Millisecond, ElectionTimeout: 100 * time.Millisecond, LeaderLeaseTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return n
}

// waitGoroutines waits (bounded) until the goroutine count is back to base,
// then reports the stacks of any leftovers.
func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines leaked: %d > %d\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestNodeSingleReopen(t *testing.T) {
	base := runtime.NumGoroutine()
	dir := t.TempDir()
	ctx := testCtx(t)
	n := openSingle(t, dir)
	if !n.IsLeader() {
		t.Fatal("bootstrapped single node is not leader after Open")
	}
	if id, ok := n.LeaderID(); !ok || id != 1 {
		t.Fatalf("leader id %d %v", id, ok)
	}
	s := n.State()
	if len(s.ClusterID) != 22 || s.ControllerID != 1 {
		t.Fatalf("cluster id %q controller %d", s.ClusterID, s.ControllerID)
	}
	clusterID := s.ClusterID

	ch, cancel := n.Subscribe()
	defer cancel()
	reg, err := n.Apply(ctx, RegisterBroker{ID: 1, Host: "127.0.0.1", Port: 9092, IncarnationID: NewTopicID()})
	if err != nil {
		t.Fatal(err)
	}
	if reg.BrokerEpoch != int64(reg.Index) {
		t.Fatalf("register result %+v", reg)
	}
	select {
	case <-ch:
	default:
		t.Fatal("no notification after apply")
	}
	if n.State().Version != reg.Index {
		t.Fatalf("state version %d, want %d", n.State().Version, reg.Index)
	}
	ct, err := NewCreateTopic("orders", 3, 1, map[string]string{"retention.ms": "1000"}, n.State().SortedBrokers())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Apply(ctx, ct); err != nil {
		t.Fatal(err)
	}
	other := ct
	other.Topic.ID = NewTopicID()
	if _, err := n.Apply(ctx, other); !errors.Is(err, ErrTopicExists) {
		t.Fatalf("duplicate create: %v", err)
	}
	if _, err := n.Apply(ctx, AlterConfigs{Resource: ResourceBroker, Name: "1", Set: map[string]string{"a": "b"}}); err != nil {
		t.Fatal(err)
	}
	pid, err := n.Apply(ctx, AllocateProducerIDs{BrokerID: 1, Start: n.State().NextProducerID, Count: 1000})
	if err != nil || pid.ProducerIDs != (ProducerIDBlock{0, 1000}) {
		t.Fatalf("allocate: %+v %v", pid, err)
	}
	if _, err := n.Apply(ctx, AllocateProducerIDs{BrokerID: 1, Start: 0, Count: 1000}); !errors.Is(err, ErrStaleProducerIDBlock) {
		t.Fatalf("stale allocate: %v", err)
	}
	if _, err := n.Apply(ctx, DeleteTopic{ID: NewTopicID()}); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("delete unknown: %v", err)
	}
	want := n.State()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := n.Apply(ctx, InitCluster{ClusterID: "x"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("apply after close: %v", err)
	}
	waitGoroutines(t, base)

	n = openSingle(t, dir)
	defer n.Close()
	if err := n.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	got := n.State()
	if got.ClusterID != clusterID {
		t.Fatalf("cluster id changed on reopen: %q -> %q", clusterID, got.ClusterID)
	}
	g, w := withoutVersion(got), withoutVersion(want)
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("state after reopen differs\n got %+v\nwant %+v", g, w)
	}
	if got.Topics["orders"].Configs["retention.ms"] != "1000" || got.NextProducerID != 1000 {
		t.Fatal("reopened state lost data")
	}
}

func TestNodeReopenFromSnapshot(t *testing.T) {
	dir := t.TempDir()
	ctx := testCtx(t)
	n := openSingle(t, dir)
	for i := range 20 {
		if _, err := n.Apply(ctx, AllocateProducerIDs{Start: int64(i * 10), Count: 10}); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.r.Snapshot().Error(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	// Entries after the snapshot are replayed from the log on reopen.
	if _, err := n.Apply(ctx, AllocateProducerIDs{Start: 200, Count: 10}); err != nil {
		t.Fatal(err)
	}
	want := n.State()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir + "/snapshots")
	if err != nil || len(entries) == 0 {
		t.Fatalf("no snapshot written: %v", err)
	}
	n = openSingle(t, dir)
	defer n.Close()
	if err := n.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	if got := n.State(); !reflect.DeepEqual(withoutVersion(got), withoutVersion(want)) || got.NextProducerID != 210 {
		t.Fatalf("after reopen: next pid %d, want 210; cluster %q want %q", got.NextProducerID, got.ClusterID, want.ClusterID)
	}
}

func TestOpenErrors(t *testing.T) {
	for _, cfg := range []Config{
		{NodeID: -1, DataDir: t.TempDir(), BindAddr: "127.0.0.1:0"},
		{NodeID: 1, BindAddr: "127.0.0.1:0"},
		{NodeID: 1, DataDir: t.TempDir()},
	} {
		if _, err := Open(cfg); err == nil {
			t.Errorf("Open(%+v) succeeded", cfg)
		}
	}
	// A second node on the same data dir must fail, not hang or corrupt.
	dir := t.TempDir()
	n := openSingle(t, dir)
	defer n.Close()
	_, err := Open(Config{NodeID: 1, DataDir: dir, BindAddr: "127.0.0.1:0"})
	if err == nil || !strings.Contains(err.Error(), "raft.db") {
		t.Fatalf("second open on a locked dir: %v", err)
	}
}

func TestNodeApplyAll(t *testing.T) {
	ctx := testCtx(t)
	n := openSingle(t, t.TempDir())
	defer n.Close()
	var cmds []Command
	for i := range 50 {
		cmds = append(cmds, CreateTopic{Topic: topic(fmt.Sprintf("t%02d", i), NewTopicID(), 1, 1)})
	}
	cmds = append(cmds, DeleteTopic{ID: idC}, AllocateProducerIDs{Start: 0, Count: 7}, AllocateProducerIDs{Start: 0, Count: 7})
	res, errs := n.ApplyAll(ctx, cmds)
	for i := range 51 {
		if i < 50 && (errs[i] != nil || res[i].Index == 0) {
			t.Fatalf("command %d: %+v %v", i, res[i], errs[i])
		}
		if i > 0 && i < 50 && res[i].Index <= res[i-1].Index {
			t.Fatalf("commands applied out of order: %d then %d", res[i-1].Index, res[i].Index)
		}
	}
	if !errors.Is(errs[50], ErrUnknownTopic) || errs[51] != nil || res[51].ProducerIDs.Count != 7 || !errors.Is(errs[52], ErrStaleProducerIDBlock) {
		t.Fatalf("tail outcomes: %v / %+v %v / %v", errs[50], res[51], errs[51], errs[52])
	}
	if len(n.State().Topics) != 50 {
		t.Fatalf("%d topics", len(n.State().Topics))
	}
}

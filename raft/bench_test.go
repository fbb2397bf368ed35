package raft

import (
	"context"
	"fmt"
	"testing"

	hraft "github.com/hashicorp/raft"
)

// benchFSM returns an FSM holding topics x partitions over 3 brokers.
func benchFSM(b *testing.B, topics, partitions int) (*testFSM, [][16]byte) {
	f := newTestFSM()
	f.mustApplyF(b, brokers(1, 2, 3)...)
	ids := make([][16]byte, topics)
	for i := range topics {
		ct, err := NewCreateTopic(fmt.Sprintf("topic-%05d", i), int32(partitions), 3, nil, f.current().SortedBrokers())
		if err != nil {
			b.Fatal(err)
		}
		f.mustApplyF(b, ct)
		ids[i] = ct.Topic.ID
	}
	return f, ids
}

// BenchmarkApplyPartitionChange measures one PartitionChange per raft
// batch (the worst case: each copies the topic maps) with 1000 topics.
func BenchmarkApplyPartitionChange(b *testing.B) {
	f, ids := benchFSM(b, 1000, 8)
	b.ResetTimer()
	for i := range b.N {
		id := ids[i%len(ids)]
		p := f.current().TopicsByID[id].Partitions[0]
		if _, err := f.apply(PartitionChange{TopicID: id, Leader: p.Leader, ISR: p.ISR, LeaderEpoch: p.LeaderEpoch, ExpectedPartitionEpoch: p.PartitionEpoch}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyBatchPartitionChange measures PartitionChange applied 64 per
// raft batch (raft's MaxAppendEntries), as during a failover burst.
func BenchmarkApplyBatchPartitionChange(b *testing.B) {
	f, ids := benchFSM(b, 1000, 8)
	b.ResetTimer()
	for i := 0; i < b.N; i += 64 {
		logs := make([]*hraft.Log, 0, 64)
		s := f.current()
		for j := range 64 {
			id := ids[(i+j)%len(ids)]
			p := s.TopicsByID[id].Partitions[0]
			f.index++
			logs = append(logs, &hraft.Log{Type: hraft.LogCommand, Index: f.index, Data: EncodeCommand(PartitionChange{
				TopicID: id, Leader: p.Leader, ISR: p.ISR, LeaderEpoch: p.LeaderEpoch, ExpectedPartitionEpoch: p.PartitionEpoch})})
		}
		for _, r := range f.ApplyBatch(logs) {
			if err := r.(*applyResponse).err; err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkEncodeState measures snapshot encoding of 1000 topics x 8
// partitions.
func BenchmarkEncodeState(b *testing.B) {
	f, _ := benchFSM(b, 1000, 8)
	s := f.current()
	b.SetBytes(int64(len(encodeState(s))))
	b.ResetTimer()
	for range b.N {
		encodeState(s)
	}
}

// BenchmarkControllerPartitionScan measures the controller's per-tick
// scan for finishable reassignments and, when balancing is due, for
// leaders to move, over 1000 topics x 8 partitions with nothing to do.
func BenchmarkControllerPartitionScan(b *testing.B) {
	f, _ := benchFSM(b, 1000, 8)
	s := f.current()
	b.Run("CompleteReassignmentCommands", func(b *testing.B) {
		for range b.N {
			if len(CompleteReassignmentCommands(s)) != 0 {
				b.Fatal("nothing to complete")
			}
		}
	})
	b.Run("RebalanceCommands", func(b *testing.B) {
		for range b.N {
			if len(RebalanceCommands(s, 10)) != 0 {
				b.Fatal("nothing to balance")
			}
		}
	})
}

// BenchmarkNodeApply measures one committed command on a single node:
// bolt append with fsync, FSM apply and publish.
func BenchmarkNodeApply(b *testing.B) {
	n, err := Open(Config{NodeID: 1, DataDir: b.TempDir(), BindAddr: "127.0.0.1:0", Bootstrap: true, Logger: testLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		if _, err := n.Apply(ctx, AlterConfigs{Resource: ResourceBroker, Name: "1", Set: map[string]string{"k": fmt.Sprint(i)}}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNodeApplyAll measures PartitionChange commands proposed 256 at a
// time with ApplyAll on a single node holding 1000 topics.
func BenchmarkNodeApplyAll(b *testing.B) {
	n, err := Open(Config{NodeID: 1, DataDir: b.TempDir(), BindAddr: "127.0.0.1:0", Bootstrap: true, Logger: testLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	ctx := context.Background()
	var create []Command
	var ids [][16]byte
	for i := range 1000 {
		ct, err := NewCreateTopic(fmt.Sprintf("topic-%05d", i), 1, 1, nil, []Broker{{ID: 1}})
		if err != nil {
			b.Fatal(err)
		}
		create = append(create, ct)
		ids = append(ids, ct.Topic.ID)
	}
	if _, errs := n.ApplyAll(ctx, create); errs[0] != nil {
		b.Fatal(errs[0])
	}
	b.ResetTimer()
	for i := 0; i < b.N; i += 256 {
		s := n.State()
		cmds := make([]Command, 0, 256)
		for j := range 256 {
			id := ids[(i+j)%len(ids)]
			p := s.TopicsByID[id].Partitions[0]
			cmds = append(cmds, PartitionChange{TopicID: id, Leader: p.Leader, ISR: p.ISR, LeaderEpoch: p.LeaderEpoch, ExpectedPartitionEpoch: p.PartitionEpoch})
		}
		_, errs := n.ApplyAll(ctx, cmds)
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkStartToReady measures a single-voter node from Open until it
// leads with a complete state: bootstrapping a new cluster, and reopening
// an existing one (Open, then WaitLeader).
func BenchmarkStartToReady(b *testing.B) {
	b.Run("bootstrap", func(b *testing.B) {
		for b.Loop() {
			n, err := Open(Config{NodeID: 1, DataDir: b.TempDir(), BindAddr: "127.0.0.1:0", Bootstrap: true, Logger: testLogger()})
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			_ = n.Close()
			b.StartTimer()
		}
	})
	b.Run("reopen", func(b *testing.B) {
		dir := b.TempDir()
		n, err := Open(Config{NodeID: 1, DataDir: dir, BindAddr: "127.0.0.1:0", Bootstrap: true, Logger: testLogger()})
		if err != nil {
			b.Fatal(err)
		}
		_ = n.Close()
		for b.Loop() {
			n, err := Open(Config{NodeID: 1, DataDir: dir, BindAddr: "127.0.0.1:0", Bootstrap: true, Logger: testLogger()})
			if err != nil {
				b.Fatal(err)
			}
			if err := n.WaitLeader(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			_ = n.Close()
			b.StartTimer()
		}
	})
}

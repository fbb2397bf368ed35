package raft

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"testing"

	hraft "github.com/hashicorp/raft"
)

// randomCommand draws a command that is often valid against s and often
// not (stale epochs, unknown ids, duplicate names), so both paths of every
// apply function run.
func randomCommand(r *rand.Rand, s *State) Command {
	names := s.SortedTopicNames()
	pick := func() (*Topic, bool) {
		if len(names) == 0 || r.IntN(10) == 0 {
			return nil, false
		}
		return s.Topics[names[r.IntN(len(names))]], true
	}
	id := func() [16]byte { return [16]byte{byte(r.IntN(40) + 1)} }
	switch r.IntN(15) {
	case 0:
		return InitCluster{ClusterID: []string{"a", "b"}[r.IntN(2)]}
	case 1:
		return RegisterBroker{ID: int32(r.IntN(5)), Host: "h", Port: int32(r.IntN(3)), IncarnationID: [16]byte{byte(r.IntN(3))}, Fenced: r.IntN(2) == 0}
	case 2:
		return FenceBroker{ID: int32(r.IntN(5)), Epoch: int64(r.IntN(50)) - 1}
	case 3:
		if r.IntN(4) == 0 {
			return UnregisterBroker{ID: int32(r.IntN(5))}
		}
		return UnfenceBroker{ID: int32(r.IntN(5)), Epoch: -1}
	case 4, 5:
		return CreateTopic{Topic: topic(fmt.Sprintf("t%d", r.IntN(30)), id(), 1+r.IntN(4), 1, 2, 3)}
	case 6:
		if tp, ok := pick(); ok {
			return DeleteTopic{ID: tp.ID}
		}
		return DeleteTopic{ID: id()}
	case 7:
		if tp, ok := pick(); ok {
			n := int32(len(tp.Partitions)) - int32(r.IntN(2))
			return CreatePartitions{TopicID: tp.ID, Partitions: []Partition{{Index: n, Replicas: []int32{2, 3}, ISR: []int32{3}, Leader: 3}}}
		}
		return CreatePartitions{TopicID: id(), Partitions: []Partition{{Replicas: []int32{1}, Leader: -1}}}
	case 8, 9:
		if tp, ok := pick(); ok {
			pi := r.IntN(len(tp.Partitions))
			p := tp.Partitions[pi]
			leader := p.Replicas[r.IntN(len(p.Replicas))]
			return PartitionChange{TopicID: tp.ID, Partition: int32(pi), Leader: leader, ISR: []int32{leader},
				LeaderEpoch: p.LeaderEpoch + 1, ExpectedPartitionEpoch: p.PartitionEpoch - int32(r.IntN(2))}
		}
		return PartitionChange{TopicID: id(), Leader: -1}
	case 10:
		name := fmt.Sprintf("t%d", r.IntN(30))
		res := ResourceTopic
		if r.IntN(3) == 0 {
			res, name = ResourceBroker, []string{"", "1", "2"}[r.IntN(3)]
		}
		return AlterConfigs{Resource: res, Name: name, Set: map[string]string{fmt.Sprint("k", r.IntN(3)): fmt.Sprint(r.IntN(3))}, Delete: []string{fmt.Sprint("k", r.IntN(3))}}
	case 11:
		// Reassignments as the controller computes them (start, change,
		// cancel, completion), sometimes from a stale epoch.
		if tp, ok := pick(); ok {
			pi := int32(r.IntN(len(tp.Partitions)))
			var cmd Command
			switch r.IntN(3) {
			case 0:
				if done := CompleteReassignmentCommands(s); len(done) > 0 {
					cmd = done[r.IntN(len(done))]
				}
			case 1:
				cmd, _ = ReassignCommand(s, tp.Name, pi, nil)
			default:
				target := [][]int32{{1, 2}, {2, 3}, {3, 4, 1}, {4}}[r.IntN(4)]
				cmd, _ = ReassignCommand(s, tp.Name, pi, target)
			}
			if rp, ok := cmd.(ReassignPartition); ok {
				rp.ExpectedPartitionEpoch -= int32(r.IntN(2))
				return rp
			}
		}
		return ReassignPartition{TopicID: id(), Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}
	case 12:
		acl := ACL{ResourceType: 2, ResourceName: fmt.Sprint("t", r.IntN(3)), PatternType: 3, Principal: "User:u", Host: "*", Operation: int8(2 + r.IntN(3)), Permission: 3}
		if r.IntN(2) == 0 {
			return DeleteACLs{ACLs: []ACL{acl}}
		}
		return CreateACLs{ACLs: []ACL{acl, aclRead}}
	case 13:
		user := fmt.Sprint("u", r.IntN(3))
		if r.IntN(2) == 0 {
			return DeleteSCRAMCredential{User: user, Mechanism: SCRAMSHA256}
		}
		return scram(user, SCRAMSHA256, int32(4096+r.IntN(3)))
	default:
		return AllocateProducerIDs{Start: s.NextProducerID - int64(r.IntN(2)), Count: int32(1 + r.IntN(100))}
	}
}

// TestMetamorphicBatching drives three state machines with the same random
// histories: one entry per apply, random-size batches, and random-size
// batches with a snapshot/restore round trip between batches. They must
// agree on every response and on the state at every batch boundary, and
// no published state may change afterwards.
func TestMetamorphicBatching(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 42))
			single, batched, restored := newFSM(), newFSM(), newFSM()
			type kept struct {
				s   *State
				enc []byte
			}
			var published []kept
			index := uint64(0)
			okCount := 0
			for index < 600 {
				n := 1 + r.IntN(20)
				var logs []*hraft.Log
				var want []any
				for range n {
					index++
					data := EncodeCommand(randomCommand(r, single.current()))
					l := &hraft.Log{Type: hraft.LogCommand, Index: index, Data: data}
					resp := single.Apply(l)
					if resp.(*applyResponse).err == nil {
						okCount++
					}
					want = append(want, resp)
					logs = append(logs, l)
				}
				for _, m := range []*fsm{batched, restored} {
					got := m.ApplyBatch(logs)
					for i := range got {
						g, w := got[i].(*applyResponse), want[i].(*applyResponse)
						if g.res != w.res || fmt.Sprint(g.err) != fmt.Sprint(w.err) {
							t.Fatalf("index %d: response %+v, single-entry apply gave %+v", logs[i].Index, g, w)
						}
					}
					if !reflect.DeepEqual(m.current(), single.current()) {
						t.Fatalf("index %d: states diverge", index)
					}
				}
				if r.IntN(4) == 0 {
					snap, _ := restored.Snapshot()
					var sink memSink
					if err := snap.Persist(&sink); err != nil {
						t.Fatal(err)
					}
					fresh := newFSM()
					if err := fresh.Restore(io.NopCloser(&sink.Buffer)); err != nil {
						t.Fatal(err)
					}
					restored = fresh
				}
				s := batched.current()
				published = append(published, kept{s, encodeState(s)})
			}
			for _, k := range published {
				if !bytes.Equal(encodeState(k.s), k.enc) {
					t.Fatalf("published state of version %d changed later", k.s.Version)
				}
			}
			if okCount < 100 {
				t.Fatalf("only %d of %d commands succeeded: the history exercises too little", okCount, index)
			}
		})
	}
}

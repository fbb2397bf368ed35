package raft

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"testing"

	hraft "github.com/hashicorp/raft"
)

// testFSM wraps an fsm with a log index counter, as raft would drive it.
type testFSM struct {
	*fsm
	index uint64
}

func newTestFSM() *testFSM { return &testFSM{fsm: newFSM()} }

func (f *testFSM) apply(cmd Command) (Result, error) {
	return f.applyRaw(EncodeCommand(cmd))
}

func (f *testFSM) applyRaw(data []byte) (Result, error) {
	f.index++
	resp := f.Apply(&hraft.Log{Type: hraft.LogCommand, Index: f.index, Data: data}).(*applyResponse)
	return resp.res, resp.err
}

func (f *testFSM) mustApply(t *testing.T, cmds ...Command) {
	t.Helper()
	for _, c := range cmds {
		if _, err := f.apply(c); err != nil {
			t.Fatalf("apply %s: %v", c.Type(), err)
		}
	}
}

var (
	idA = [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	idB = [16]byte{0xb}
	idC = [16]byte{0xc}
)

var (
	aclRead  = ACL{ResourceType: 2, ResourceName: "t", PatternType: 3, Principal: "User:alice", Host: "*", Operation: 3, Permission: 3}
	aclWrite = ACL{ResourceType: 2, ResourceName: "t-", PatternType: 4, Principal: "User:bob", Host: "*", Operation: 4, Permission: 2}
)

func scram(user string, mech SCRAMMechanism, iter int32) UpsertSCRAMCredential {
	kl := mech.keyLen()
	return UpsertSCRAMCredential{User: user, Mechanism: mech, Salt: []byte("salt"), StoredKey: bytes.Repeat([]byte{1}, kl),
		ServerKey: bytes.Repeat([]byte{2}, kl), Iterations: iter}
}

func topic(name string, id [16]byte, n int, replicas ...int32) Topic {
	tp := Topic{Name: name, ID: id}
	for i := range n {
		tp.Partitions = append(tp.Partitions, Partition{Index: int32(i), Replicas: replicas, ISR: replicas, Leader: replicas[0]})
	}
	return tp
}

func brokers(ids ...int32) []Command {
	var out []Command
	for _, id := range ids {
		out = append(out, RegisterBroker{ID: id, Host: "127.0.0.1", Port: 9092 + id, IncarnationID: [16]byte{byte(id), 1}})
	}
	return out
}

// withoutVersion returns a comparable copy: Version moves with every entry,
// even a no-op, so equal-state checks ignore it.
func withoutVersion(s *State) State {
	c := *s
	c.Version = 0
	return c
}

func TestFSMCommands(t *testing.T) {
	base := append(brokers(1, 2, 3), InitCluster{ClusterID: "abc"}, CreateTopic{Topic: topic("t", idA, 2, 1, 2, 3)})
	tests := []struct {
		name    string
		setup   []Command
		cmd     Command
		wantErr error
		check   func(t *testing.T, s *State, r Result)
	}{
		{"init cluster", nil, InitCluster{ClusterID: "x"}, nil, func(t *testing.T, s *State, _ Result) {
			if s.ClusterID != "x" {
				t.Fatalf("cluster id %q", s.ClusterID)
			}
		}},
		{"init cluster conflict", base, InitCluster{ClusterID: "other"}, ErrClusterIDMismatch, nil},
		{"init cluster empty", nil, InitCluster{}, ErrInvalidCommand, nil},
		{"register broker", nil, RegisterBroker{ID: 7, Host: "h", Port: 1, Rack: "r", Fenced: true}, nil, func(t *testing.T, s *State, r Result) {
			b := s.Brokers[7]
			if b.Host != "h" || b.Port != 1 || b.Rack != "r" || !b.Fenced || b.Epoch != int64(r.Index) || r.BrokerEpoch != b.Epoch {
				t.Fatalf("broker %+v result %+v", b, r)
			}
		}},
		{"register new incarnation bumps epoch", base, RegisterBroker{ID: 1, Host: "new", Port: 5, IncarnationID: [16]byte{9}}, nil, func(t *testing.T, s *State, r Result) {
			if b := s.Brokers[1]; b.Epoch != int64(r.Index) || b.Host != "new" {
				t.Fatalf("broker %+v", b)
			}
		}},
		{"register same incarnation keeps epoch", base, RegisterBroker{ID: 1, Host: "moved", Port: 5, IncarnationID: [16]byte{1, 1}}, nil, func(t *testing.T, s *State, r Result) {
			if b := s.Brokers[1]; b.Epoch != 1 || b.Host != "moved" || r.BrokerEpoch != 1 {
				t.Fatalf("broker %+v result %+v", b, r)
			}
		}},
		{"register negative id", nil, RegisterBroker{ID: -1}, ErrInvalidCommand, nil},
		{"fence", base, FenceBroker{ID: 2, Epoch: 2}, nil, func(t *testing.T, s *State, _ Result) {
			if !s.Brokers[2].Fenced {
				t.Fatal("not fenced")
			}
		}},
		{"fence any epoch", base, FenceBroker{ID: 2, Epoch: -1}, nil, func(t *testing.T, s *State, _ Result) {
			if !s.Brokers[2].Fenced {
				t.Fatal("not fenced")
			}
		}},
		{"fence stale epoch", base, FenceBroker{ID: 2, Epoch: 1}, ErrStaleBrokerEpoch, nil},
		{"fence unknown", base, FenceBroker{ID: 9, Epoch: -1}, ErrUnknownBroker, nil},
		{"unfence", []Command{RegisterBroker{ID: 4, Fenced: true}}, UnfenceBroker{ID: 4, Epoch: 1}, nil, func(t *testing.T, s *State, _ Result) {
			if s.Brokers[4].Fenced {
				t.Fatal("still fenced")
			}
		}},
		{"unregister active", base, UnregisterBroker{ID: 2}, ErrBrokerActive, nil},
		{"unregister", append(slices.Clone(base), FenceBroker{ID: 2, Epoch: -1}), UnregisterBroker{ID: 2}, nil, func(t *testing.T, s *State, _ Result) {
			if _, ok := s.Brokers[2]; ok || len(s.Brokers) != 2 {
				t.Fatalf("brokers %v", s.Brokers)
			}
		}},
		{"unregister unknown", base, UnregisterBroker{ID: 9}, ErrUnknownBroker, nil},
		{"unfence unknown", nil, UnfenceBroker{ID: 4, Epoch: -1}, ErrUnknownBroker, nil},
		{"create topic", nil, CreateTopic{Topic: topic("n", idB, 3, 1)}, nil, func(t *testing.T, s *State, _ Result) {
			tp, ok := s.Topic("n")
			if !ok || len(tp.Partitions) != 3 || s.TopicsByID[idB] != tp {
				t.Fatalf("topic %+v", tp)
			}
		}},
		{"create topic same name other id", base, CreateTopic{Topic: topic("t", idB, 1, 1)}, ErrTopicExists, nil},
		{"create topic same id other name", base, CreateTopic{Topic: topic("u", idA, 1, 1)}, ErrTopicExists, nil},
		{"create topic same name same id", base, CreateTopic{Topic: topic("t", idA, 5, 1)}, nil, func(t *testing.T, s *State, _ Result) {
			if len(s.Topics["t"].Partitions) != 2 {
				t.Fatal("retry changed the topic")
			}
		}},
		{"create topic zero id", nil, CreateTopic{Topic: topic("z", [16]byte{}, 1, 1)}, ErrInvalidCommand, nil},
		{"create topic no partitions", nil, CreateTopic{Topic: Topic{Name: "z", ID: idB}}, ErrInvalidPartitions, nil},
		{"create topic leader outside isr", nil, CreateTopic{Topic: Topic{Name: "z", ID: idB, Partitions: []Partition{{Replicas: []int32{1, 2}, ISR: []int32{2}, Leader: 1}}}}, ErrInvalidPartitionChange, nil},
		{"create topic duplicate replica", nil, CreateTopic{Topic: Topic{Name: "z", ID: idB, Partitions: []Partition{{Replicas: []int32{1, 1}, Leader: -1}}}}, ErrInvalidReplicaAssignment, nil},
		{"create topic no replicas", nil, CreateTopic{Topic: Topic{Name: "z", ID: idB, Partitions: []Partition{{Leader: -1}}}}, ErrInvalidReplicaAssignment, nil},
		{"create partitions negative replica", base, CreatePartitions{TopicID: idA, Partitions: []Partition{{Index: 2, Replicas: []int32{-3}, Leader: -1}}}, ErrInvalidReplicaAssignment, nil},
		{"partition change empty replicas", base, PartitionChange{TopicID: idA, Partition: 1, Leader: -1, LeaderEpoch: 1, Replicas: []int32{}}, ErrInvalidReplicaAssignment, nil},
		{"create topic bad index", nil, CreateTopic{Topic: Topic{Name: "z", ID: idB, Partitions: []Partition{{Index: 1, Replicas: []int32{1}, Leader: -1}}}}, ErrInvalidPartitions, nil},
		{"delete topic", base, DeleteTopic{ID: idA}, nil, func(t *testing.T, s *State, _ Result) {
			if len(s.Topics) != 0 || len(s.TopicsByID) != 0 {
				t.Fatal("topic still there")
			}
		}},
		{"delete unknown topic", base, DeleteTopic{ID: idB}, ErrUnknownTopic, nil},
		{"create partitions", base, CreatePartitions{TopicID: idA, Partitions: []Partition{{Index: 2, Replicas: []int32{3}, ISR: []int32{3}, Leader: 3}}}, nil, func(t *testing.T, s *State, _ Result) {
			if p := s.Topics["t"].Partitions; len(p) != 3 || p[2].Leader != 3 {
				t.Fatalf("partitions %+v", p)
			}
		}},
		{"create partitions gap", base, CreatePartitions{TopicID: idA, Partitions: []Partition{{Index: 3, Replicas: []int32{3}, Leader: -1}}}, ErrInvalidPartitions, nil},
		{"create partitions shrink", base, CreatePartitions{TopicID: idA, Partitions: []Partition{{Index: 0, Replicas: []int32{3}, Leader: -1}}}, ErrInvalidPartitions, nil},
		{"create partitions empty", base, CreatePartitions{TopicID: idA}, ErrInvalidPartitions, nil},
		{"create partitions unknown topic", base, CreatePartitions{TopicID: idB, Partitions: []Partition{{Index: 0, Replicas: []int32{3}, Leader: -1}}}, ErrUnknownTopic, nil},
		{"partition change", base, PartitionChange{TopicID: idA, Partition: 1, Leader: 2, ISR: []int32{2, 3}, LeaderEpoch: 1, ExpectedPartitionEpoch: 0}, nil, func(t *testing.T, s *State, _ Result) {
			p := s.Topics["t"].Partitions[1]
			if p.Leader != 2 || p.LeaderEpoch != 1 || p.PartitionEpoch != 1 || !reflect.DeepEqual(p.ISR, []int32{2, 3}) || !reflect.DeepEqual(p.Replicas, []int32{1, 2, 3}) {
				t.Fatalf("partition %+v", p)
			}
			if q := s.Topics["t"].Partitions[0]; q.PartitionEpoch != 0 {
				t.Fatalf("other partition changed: %+v", q)
			}
		}},
		{"partition change reassign", base, PartitionChange{TopicID: idA, Partition: 0, Leader: 1, ISR: []int32{1}, LeaderEpoch: 0, Replicas: []int32{1, 4}}, nil, func(t *testing.T, s *State, _ Result) {
			if p := s.Topics["t"].Partitions[0]; !reflect.DeepEqual(p.Replicas, []int32{1, 4}) || p.PartitionEpoch != 1 {
				t.Fatalf("partition %+v", p)
			}
		}},
		{"partition change stale", base, PartitionChange{TopicID: idA, Partition: 1, Leader: 1, ISR: []int32{1}, ExpectedPartitionEpoch: 3}, ErrStalePartitionEpoch, nil},
		{"partition change leader without epoch bump", base, PartitionChange{TopicID: idA, Partition: 1, Leader: 2, ISR: []int32{2}, LeaderEpoch: 0}, ErrInvalidPartitionChange, nil},
		{"partition change epoch backwards", append(base[:len(base):len(base)], PartitionChange{TopicID: idA, Partition: 0, Leader: 2, ISR: []int32{2}, LeaderEpoch: 5}), PartitionChange{TopicID: idA, Partition: 0, Leader: 2, ISR: []int32{2}, LeaderEpoch: 4, ExpectedPartitionEpoch: 1}, ErrInvalidPartitionChange, nil},
		{"partition change isr outside replicas", base, PartitionChange{TopicID: idA, Partition: 1, Leader: 1, ISR: []int32{1, 9}}, ErrInvalidPartitionChange, nil},
		{"partition change no leader", base, PartitionChange{TopicID: idA, Partition: 1, Leader: -1, LeaderEpoch: 1}, nil, func(t *testing.T, s *State, _ Result) {
			if p := s.Topics["t"].Partitions[1]; p.Leader != -1 || len(p.ISR) != 0 {
				t.Fatalf("partition %+v", p)
			}
		}},
		{"partition change unknown partition", base, PartitionChange{TopicID: idA, Partition: 2, Leader: 1, ISR: []int32{1}}, ErrUnknownPartition, nil},
		{"partition change unknown topic", base, PartitionChange{TopicID: idC, Partition: 0, Leader: 1, ISR: []int32{1}}, ErrUnknownTopic, nil},
		{"alter topic configs", base, AlterConfigs{Resource: ResourceTopic, Name: "t", Set: map[string]string{"retention.ms": "1"}}, nil, func(t *testing.T, s *State, _ Result) {
			if s.Topics["t"].Configs["retention.ms"] != "1" || s.TopicsByID[idA].Configs["retention.ms"] != "1" {
				t.Fatalf("configs %v", s.Topics["t"].Configs)
			}
		}},
		{"alter topic configs delete", append(base[:len(base):len(base)], AlterConfigs{Resource: ResourceTopic, Name: "t", Set: map[string]string{"a": "1", "b": "2"}}),
			AlterConfigs{Resource: ResourceTopic, Name: "t", Delete: []string{"a", "b"}}, nil, func(t *testing.T, s *State, _ Result) {
				if s.Topics["t"].Configs != nil {
					t.Fatalf("configs %v", s.Topics["t"].Configs)
				}
			}},
		{"alter unknown topic", base, AlterConfigs{Resource: ResourceTopic, Name: "nope", Set: map[string]string{"a": "1"}}, ErrUnknownTopic, nil},
		{"alter broker configs", nil, AlterConfigs{Resource: ResourceBroker, Name: "1", Set: map[string]string{"x": "y"}, Delete: []string{"x"}}, nil, func(t *testing.T, s *State, _ Result) {
			if s.BrokerConfigs["1"]["x"] != "y" {
				t.Fatalf("configs %v", s.BrokerConfigs)
			}
		}},
		{"alter cluster default configs", nil, AlterConfigs{Resource: ResourceBroker, Name: "", Set: map[string]string{"x": "y"}}, nil, func(t *testing.T, s *State, _ Result) {
			if s.BrokerConfigs[""]["x"] != "y" {
				t.Fatalf("configs %v", s.BrokerConfigs)
			}
		}},
		{"alter broker bad name", nil, AlterConfigs{Resource: ResourceBroker, Name: "b1"}, ErrInvalidCommand, nil},
		{"alter group configs", nil, AlterConfigs{Resource: ResourceGroup, Name: "g1", Set: map[string]string{"consumer.session.timeout.ms": "50000"}}, nil, func(t *testing.T, s *State, _ Result) {
			if s.GroupConfigs["g1"]["consumer.session.timeout.ms"] != "50000" {
				t.Fatalf("configs %v", s.GroupConfigs)
			}
		}},
		{"delete the last group config", []Command{AlterConfigs{Resource: ResourceGroup, Name: "g1", Set: map[string]string{"a": "1"}}},
			AlterConfigs{Resource: ResourceGroup, Name: "g1", Delete: []string{"a"}}, nil, func(t *testing.T, s *State, _ Result) {
				if _, ok := s.GroupConfigs["g1"]; ok {
					t.Fatalf("configs %v, want no entry", s.GroupConfigs)
				}
			}},
		{"alter group without a name", nil, AlterConfigs{Resource: ResourceGroup, Name: "", Set: map[string]string{"a": "1"}}, ErrInvalidCommand, nil},
		{"alter bad resource", nil, AlterConfigs{Resource: 3, Name: "t"}, ErrInvalidCommand, nil},
		{"allocate producer ids", nil, AllocateProducerIDs{BrokerID: 1, Start: 0, Count: 1000}, nil, func(t *testing.T, s *State, r Result) {
			if s.NextProducerID != 1000 || r.ProducerIDs != (ProducerIDBlock{Start: 0, Count: 1000}) {
				t.Fatalf("next %d result %+v", s.NextProducerID, r)
			}
		}},
		{"allocate producer ids stale", []Command{AllocateProducerIDs{Start: 0, Count: 10}}, AllocateProducerIDs{Start: 0, Count: 10}, ErrStaleProducerIDBlock, nil},
		{"allocate producer ids zero", nil, AllocateProducerIDs{Start: 0, Count: 0}, ErrInvalidCommand, nil},
		{"create acls", nil, CreateACLs{ACLs: []ACL{aclRead, aclWrite}}, nil, func(t *testing.T, s *State, _ Result) {
			if !reflect.DeepEqual(s.SortedACLs(), []ACL{aclRead, aclWrite}) {
				t.Fatalf("acls %v", s.SortedACLs())
			}
		}},
		{"create acls with a filter value", nil, CreateACLs{ACLs: []ACL{aclRead, {ResourceType: 1, ResourceName: "t", PatternType: 3, Principal: "User:x", Host: "*", Operation: 3, Permission: 3}}}, ErrInvalidCommand, nil},
		{"create acls without principal", nil, CreateACLs{ACLs: []ACL{{ResourceType: 2, ResourceName: "t", PatternType: 3, Host: "*", Operation: 3, Permission: 3}}}, ErrInvalidCommand, nil},
		{"delete acls", []Command{CreateACLs{ACLs: []ACL{aclRead, aclWrite}}}, DeleteACLs{ACLs: []ACL{aclWrite, {ResourceName: "absent"}}}, nil, func(t *testing.T, s *State, _ Result) {
			if !reflect.DeepEqual(s.SortedACLs(), []ACL{aclRead}) {
				t.Fatalf("acls %v", s.SortedACLs())
			}
		}},
		{"upsert scram", nil, scram("alice", SCRAMSHA512, 8192), nil, func(t *testing.T, s *State, _ Result) {
			c := s.SCRAM[SCRAMKey{"alice", SCRAMSHA512}]
			if c.Iterations != 8192 || len(c.StoredKey) != 64 || string(c.Salt) != "salt" {
				t.Fatalf("credential %+v", c)
			}
		}},
		{"upsert scram replaces", []Command{scram("alice", SCRAMSHA256, 4096)}, scram("alice", SCRAMSHA256, 5000), nil, func(t *testing.T, s *State, _ Result) {
			if c := s.SCRAM[SCRAMKey{"alice", SCRAMSHA256}]; c.Iterations != 5000 || len(s.SCRAM) != 1 {
				t.Fatalf("credentials %+v", s.SCRAM)
			}
		}},
		{"upsert scram few iterations", nil, scram("alice", SCRAMSHA256, 100), ErrInvalidCommand, nil},
		{"upsert scram bad mechanism", nil, UpsertSCRAMCredential{User: "a", Mechanism: 3, Salt: []byte("s"), Iterations: 4096}, ErrInvalidCommand, nil},
		{"upsert scram short key", nil, UpsertSCRAMCredential{User: "a", Mechanism: SCRAMSHA256, Salt: []byte("s"), StoredKey: []byte{1}, ServerKey: []byte{2}, Iterations: 4096}, ErrInvalidCommand, nil},
		{"delete scram", []Command{scram("alice", SCRAMSHA256, 4096), scram("alice", SCRAMSHA512, 4096)}, DeleteSCRAMCredential{User: "alice", Mechanism: SCRAMSHA256}, nil, func(t *testing.T, s *State, _ Result) {
			if _, ok := s.SCRAM[SCRAMKey{"alice", SCRAMSHA512}]; !ok || len(s.SCRAM) != 1 {
				t.Fatalf("credentials %+v", s.SCRAM)
			}
		}},
		{"delete unknown scram", []Command{scram("alice", SCRAMSHA256, 4096)}, DeleteSCRAMCredential{User: "alice", Mechanism: SCRAMSHA512}, ErrUnknownSCRAMCredential, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newTestFSM()
			f.mustApply(t, tc.setup...)
			before := f.current()
			beforeBytes := encodeState(before)
			r, err := f.apply(tc.cmd)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if !bytes.Equal(encodeState(before), beforeBytes) {
				t.Fatal("published state was mutated")
			}
			after := f.current()
			if after.Version != f.index {
				t.Fatalf("version %d, want %d", after.Version, f.index)
			}
			if err != nil {
				if !reflect.DeepEqual(withoutVersion(before), withoutVersion(after)) {
					t.Fatal("failed command changed the state")
				}
				return
			}
			if r.Index != f.index {
				t.Fatalf("result index %d, want %d", r.Index, f.index)
			}
			tc.check(t, after, r)
			for name, tp := range after.Topics {
				if after.TopicsByID[tp.ID] != tp || tp.Name != name {
					t.Fatalf("topic indexes disagree for %q", name)
				}
			}
			if len(after.Topics) != len(after.TopicsByID) {
				t.Fatal("topic indexes differ in size")
			}
		})
	}
}

// TestFSMIdempotent applies every command type twice and checks the second
// application leaves the state exactly as the first did.
func TestFSMIdempotent(t *testing.T) {
	setup := append(brokers(1, 2, 3), InitCluster{ClusterID: "c"}, CreateTopic{Topic: topic("t", idA, 2, 1, 2, 3)},
		RegisterBroker{ID: 5, Fenced: true}, CreateACLs{ACLs: []ACL{aclRead}}, scram("bob", SCRAMSHA256, 4096),
		CreateDelegationToken{Token: testToken("a", 5000, 9000)})
	cases := []Command{
		InitCluster{ClusterID: "c"},
		RegisterBroker{ID: 4, Host: "h", Port: 1, IncarnationID: [16]byte{4}},
		RegisterBroker{ID: 1, Host: "h2", Port: 2, IncarnationID: [16]byte{77}},
		FenceBroker{ID: 1, Epoch: 1},
		UnfenceBroker{ID: 5, Epoch: -1},
		CreateTopic{Topic: topic("u", idB, 3, 2, 3)},
		DeleteTopic{ID: idA},
		CreatePartitions{TopicID: idA, Partitions: []Partition{{Index: 2, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}, {Index: 3, Replicas: []int32{2}, Leader: -1}}},
		PartitionChange{TopicID: idA, Partition: 0, Leader: 2, ISR: []int32{2}, LeaderEpoch: 1, ExpectedPartitionEpoch: 0},
		AlterConfigs{Resource: ResourceTopic, Name: "t", Set: map[string]string{"a": "b"}, Delete: []string{"c"}},
		AlterConfigs{Resource: ResourceBroker, Name: "2", Set: map[string]string{"a": "b"}},
		AllocateProducerIDs{BrokerID: 1, Start: 0, Count: 100},
		CreateACLs{ACLs: []ACL{aclRead, aclWrite}},
		DeleteACLs{ACLs: []ACL{aclRead}},
		scram("alice", SCRAMSHA512, 4096),
		DeleteSCRAMCredential{User: "bob", Mechanism: SCRAMSHA256},
		UnregisterBroker{ID: 5},
		ReassignPartition{TopicID: idA, Partition: 1, Replicas: []int32{2, 3, 1}, ISR: []int32{1, 2, 3}, Leader: 1, Adding: nil, Removing: []int32{1}},
		AlterClientQuotas{Changes: []QuotaChange{{Entity: QuotaEntity{User: Named("u"), ClientID: DefaultName},
			Set: map[string]float64{QuotaProducerByteRate: 100}}}},
		CreateDelegationToken{Token: testToken("n", 5000, 9000, "User:bob")},
		UpdateDelegationTokenExpiry{TokenID: "a", ExpiryMs: 8000},
		RemoveDelegationToken{TokenID: "a"},
		RemoveExpiredDelegationTokens{NowMs: 6000},
	}
	covered := map[CommandType]bool{}
	for _, cmd := range cases {
		covered[cmd.Type()] = true
		t.Run(cmd.Type().String(), func(t *testing.T) {
			f := newTestFSM()
			f.mustApply(t, setup...)
			before := withoutVersion(f.current())
			if _, err := f.apply(cmd); err != nil {
				t.Fatalf("first apply: %v", err)
			}
			once := withoutVersion(f.current())
			if reflect.DeepEqual(before, once) && cmd.Type() != CmdInitCluster {
				t.Fatal("first apply changed nothing: the case tests nothing")
			}
			_, _ = f.apply(cmd) // may report stale/unknown; the state is what counts
			twice := withoutVersion(f.current())
			if !reflect.DeepEqual(once, twice) {
				t.Fatalf("second apply changed the state:\nonce  %+v\ntwice %+v", once, twice)
			}
		})
	}
	for typ := range commandTable {
		if !covered[typ] {
			t.Errorf("command %s has no idempotence case", typ)
		}
	}
}

func TestFSMBadEntries(t *testing.T) {
	f := newTestFSM()
	f.mustApply(t, InitCluster{ClusterID: "c"})
	good := EncodeCommand(CreateTopic{Topic: topic("t", idA, 1, 1)})
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrCorruptCommand},
		{"unknown type", []byte{200, 1, 2}, ErrUnknownCommand},
		{"type zero", []byte{0}, ErrUnknownCommand},
		{"truncated", good[:len(good)-3], ErrCorruptCommand},
		{"trailing", append(append([]byte(nil), good...), 0), ErrCorruptCommand},
		{"huge length", []byte{byte(CmdInitCluster), 0xff, 0xff, 0xff, 0xff, 0x0f}, ErrCorruptCommand},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := withoutVersion(f.current())
			_, err := f.applyRaw(tc.data)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !reflect.DeepEqual(before, withoutVersion(f.current())) {
				t.Fatal("bad entry changed the state")
			}
		})
	}
}

// TestFSMBatchAtomicPerCommand: in one batch a failing command between two
// good ones neither applies partially nor disturbs its neighbours.
func TestFSMBatch(t *testing.T) {
	f := newFSM()
	cmds := []Command{
		CreateTopic{Topic: topic("a", idA, 1, 1)},
		CreateTopic{Topic: topic("a", idB, 1, 1)}, // exists
		AlterConfigs{Resource: ResourceTopic, Name: "a", Set: map[string]string{"k": "v"}},
		PartitionChange{TopicID: idA, Partition: 0, Leader: -1, LeaderEpoch: 1},
	}
	var logs []*hraft.Log
	for i, c := range cmds {
		logs = append(logs, &hraft.Log{Type: hraft.LogCommand, Index: uint64(10 + i), Data: EncodeCommand(c)})
	}
	logs = append(logs, &hraft.Log{Type: hraft.LogConfiguration, Index: 14})
	resps := f.ApplyBatch(logs)
	if len(resps) != len(logs) || resps[4] != nil {
		t.Fatalf("responses %v", resps)
	}
	if err := resps[1].(*applyResponse).err; !errors.Is(err, ErrTopicExists) {
		t.Fatalf("second: %v", err)
	}
	for _, i := range []int{0, 2, 3} {
		if err := resps[i].(*applyResponse).err; err != nil {
			t.Fatalf("command %d: %v", i, err)
		}
	}
	s := f.current()
	tp := s.Topics["a"]
	if tp.ID != idA || tp.Configs["k"] != "v" || tp.Partitions[0].Leader != -1 || tp.Partitions[0].PartitionEpoch != 1 || s.TopicsByID[idA] != tp {
		t.Fatalf("topic %+v", tp)
	}
	if s.Version != 13 {
		t.Fatalf("version %d", s.Version)
	}
}

func TestFSMSubscribeCoalesces(t *testing.T) {
	f := newTestFSM()
	ch, cancel := f.subscribe()
	f.mustApply(t, InitCluster{ClusterID: "a"}, RegisterBroker{ID: 1}, RegisterBroker{ID: 2})
	if len(ch) != 1 {
		t.Fatalf("pending notifications %d, want 1", len(ch))
	}
	<-ch
	f.setController(3)
	if len(ch) != 1 || f.current().ControllerID != 3 {
		t.Fatal("controller change not published")
	}
	<-ch
	cancel()
	cancel() // idempotent
	f.mustApply(t, RegisterBroker{ID: 3})
	if len(ch) != 0 {
		t.Fatal("notified after cancel")
	}
}

// memSink is an in-memory hraft.SnapshotSink.
type memSink struct {
	bytes.Buffer
	closed, cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Close() error  { s.closed = true; return nil }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }

// populate drives f through a long, varied history.
func populate(t *testing.T, f *testFSM) {
	t.Helper()
	f.mustApply(t, InitCluster{ClusterID: NewClusterID()})
	f.mustApply(t, brokers(1, 2, 3, 4, 5)...)
	f.mustApply(t, RegisterBroker{ID: 6, Host: "h6", Port: 9092, IncarnationID: [16]byte{6},
		Listeners: []Endpoint{{Name: "PLAINTEXT", Host: "h6", Port: 9092}, {Name: "SSL", Host: "h6", Port: 9093}}})
	f.mustApply(t, FenceBroker{ID: 4, Epoch: -1}, AlterConfigs{Resource: ResourceBroker, Name: "", Set: map[string]string{"log.retention.ms": "5"}},
		AlterConfigs{Resource: ResourceBroker, Name: "3", Set: map[string]string{"x": "y", "z": ""}})
	var ids [][16]byte
	for i := range 60 {
		ct, err := NewCreateTopic(fmt.Sprintf("topic-%02d", i), int32(1+i%7), int16(1+i%3), map[string]string{"cleanup.policy": "compact"}, f.current().SortedBrokers())
		if err != nil {
			t.Fatal(err)
		}
		ct.Topic.Internal = i%10 == 0
		f.mustApply(t, ct)
		ids = append(ids, ct.Topic.ID)
	}
	for i, id := range ids {
		tp := f.current().TopicsByID[id]
		p := tp.Partitions[0]
		f.mustApply(t, PartitionChange{TopicID: id, Partition: 0, Leader: p.Replicas[0], ISR: p.Replicas[:1], LeaderEpoch: p.LeaderEpoch + 1, ExpectedPartitionEpoch: p.PartitionEpoch})
		if i%4 == 0 {
			f.mustApply(t, CreatePartitions{TopicID: id, Partitions: []Partition{{Index: int32(len(tp.Partitions)), Replicas: []int32{2, 1}, ISR: []int32{2}, Leader: 2}}})
		}
		if i%9 == 0 {
			f.mustApply(t, DeleteTopic{ID: id})
		}
	}
	for i := range 5 {
		f.mustApply(t, AllocateProducerIDs{BrokerID: 1, Start: int64(i * 1000), Count: 1000})
	}
	f.mustApply(t, CreateACLs{ACLs: []ACL{aclRead, aclWrite}}, scram("alice", SCRAMSHA256, 4096), scram("alice", SCRAMSHA512, 4096),
		scram("bob", SCRAMSHA512, 10000), DeleteACLs{ACLs: []ACL{aclWrite}})
	f.mustApply(t, AlterClientQuotas{Changes: []QuotaChange{
		{Entity: QuotaEntity{User: Named("alice")}, Set: map[string]float64{QuotaProducerByteRate: 1024, QuotaConsumerByteRate: 2048}},
		{Entity: QuotaEntity{User: DefaultName, ClientID: DefaultName}, Set: map[string]float64{QuotaRequestPercentage: 50}},
		{Entity: QuotaEntity{IP: DefaultName}, Set: map[string]float64{QuotaConnectionCreationRate: 5}},
	}})
}

func TestFSMSnapshotRestore(t *testing.T) {
	src := newTestFSM()
	populate(t, src)
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	want := src.current()
	// Applies after Snapshot must not leak into the persisted copy.
	src.mustApply(t, RegisterBroker{ID: 99})
	var sink memSink
	if err := snap.Persist(&sink); err != nil || !sink.closed || sink.cancelled {
		t.Fatalf("persist: %v closed=%v cancelled=%v", err, sink.closed, sink.cancelled)
	}
	snap.Release()

	dst := newFSM()
	dst.setController(7)
	if err := dst.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	got := dst.current()
	if got.ControllerID != 7 {
		t.Fatalf("restore dropped the controller id: %d", got.ControllerID)
	}
	g, w := *got, *want
	g.ControllerID, w.ControllerID = -1, -1
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("restored state differs\n got %+v\nwant %+v", g, w)
	}
	if len(got.Topics) == 0 || got.NextProducerID != 5000 {
		t.Fatalf("populate did not populate: %d topics, next pid %d", len(got.Topics), got.NextProducerID)
	}
	for id, tp := range got.TopicsByID {
		if got.Topics[tp.Name] != tp || tp.ID != id {
			t.Fatal("restored topic indexes disagree")
		}
	}
}

func TestDecodeStateRejects(t *testing.T) {
	f := newTestFSM()
	populate(t, f)
	good := encodeState(f.current())
	dupTopic := newState()
	tp := topic("a", idA, 1, 1)
	dupTopic.Topics["a"], dupTopic.TopicsByID[idA] = &tp, &tp
	tp2 := topic("b", idA, 1, 1)
	dupTopic.Topics["b"] = &tp2
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"bad magic", append([]byte("x"), good[1:]...)},
		{"truncated", good[:len(good)/2]},
		{"trailing", append(append([]byte(nil), good...), 1)},
		{"duplicate topic id", encodeState(dupTopic)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeState(tc.b); !errors.Is(err, ErrCorruptSnapshot) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

package raft

import (
	"reflect"
	"testing"
)

// FuzzDecodeCommand: any bytes in a log entry must decode to a command or
// an error, never a panic; what decodes re-encodes to something that
// decodes to the same command, and applying it keeps the state's
// invariants. Seeds: testdata/fuzz/FuzzDecodeCommand.
func FuzzDecodeCommand(f *testing.F) {
	for _, c := range sampleCommands() {
		f.Add(EncodeCommand(c))
	}
	base := newTestFSM()
	base.mustApplyF(f, append(brokers(1, 2, 3), InitCluster{ClusterID: "c"}, CreateTopic{Topic: topic("t", idA, 2, 1, 2, 3)})...)
	f.Fuzz(func(t *testing.T, data []byte) {
		if s := fuzzApplyCommand(t, base, data); s != nil {
			checkInvariants(t, s)
		}
	})
}

// fuzzApplyCommand decodes data as a log entry; a command that decodes must
// re-encode to the same command, and is then applied to a copy of base. It
// returns the resulting state, or nil when data is not a command.
func fuzzApplyCommand(t *testing.T, base *testFSM, data []byte) *State {
	t.Helper()
	cmd, err := DecodeCommand(data)
	if err != nil {
		return nil
	}
	again, err := DecodeCommand(EncodeCommand(cmd))
	if err != nil {
		t.Fatalf("re-encoded %#v does not decode: %v", cmd, err)
	}
	if !reflect.DeepEqual(cmd, again) {
		t.Fatalf("round trip changed the command:\n%#v\n%#v", cmd, again)
	}
	fsm := &testFSM{fsm: newFSM(), index: base.index}
	fsm.state.Store(base.current())
	_, _ = fsm.applyRaw(data)
	return fsm.current()
}

// FuzzDecodeState: snapshots from disk or a peer decode or fail cleanly;
// what decodes round-trips exactly. Seeds: testdata/fuzz/FuzzDecodeState.
func FuzzDecodeState(f *testing.F) {
	f.Add([]byte(snapshotMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := decodeState(data)
		if err != nil {
			return
		}
		checkInvariants(t, s)
		again, err := decodeState(encodeState(s))
		if err != nil {
			t.Fatalf("re-encoded state does not decode: %v", err)
		}
		if !reflect.DeepEqual(s, again) {
			t.Fatalf("round trip changed the state")
		}
	})
}

func (f *testFSM) mustApplyF(tb testing.TB, cmds ...Command) {
	tb.Helper()
	for _, c := range cmds {
		if _, err := f.apply(c); err != nil {
			tb.Fatalf("apply %s: %v", c.Type(), err)
		}
	}
}

// checkInvariants fails the test when s breaks a State invariant.
func checkInvariants(t *testing.T, s *State) {
	t.Helper()
	if err := s.checkInvariants(); err != nil {
		t.Fatal(err)
	}
}

// sampleCommands holds one or more instances of every command type.
func sampleCommands() []Command {
	return []Command{
		InitCluster{ClusterID: "MkU3OEVBNTcwNTJENDM2Qg"},
		RegisterBroker{ID: 1, Host: "127.0.0.1", Port: 9092, Rack: "a", IncarnationID: [16]byte{1}, Fenced: true},
		RegisterBroker{ID: 2, Host: "127.0.0.1", Port: 9192, IncarnationID: [16]byte{2},
			Listeners: []Endpoint{{Name: "INTERNAL", Host: "127.0.0.1", Port: 9192}, {Name: "SASL_SSL", Host: "kafka.example", Port: 9094}}},
		FenceBroker{ID: 1, Epoch: 3},
		UnfenceBroker{ID: 2, Epoch: -1},
		CreateTopic{Topic: topic("t", idB, 3, 1, 2)},
		CreateTopic{Topic: Topic{Name: "c", ID: idC, Internal: true, Configs: map[string]string{"cleanup.policy": "compact"},
			Partitions: []Partition{{Index: 0, Replicas: []int32{3, 1}, ISR: []int32{3}, Leader: 3, LeaderEpoch: 2, PartitionEpoch: 4}}}},
		DeleteTopic{ID: idA},
		CreatePartitions{TopicID: idA, Partitions: []Partition{{Index: 2, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}}},
		PartitionChange{TopicID: idA, Partition: 1, Leader: 2, ISR: []int32{2, 3}, LeaderEpoch: 1},
		PartitionChange{TopicID: idA, Partition: 0, Leader: -1, LeaderEpoch: 1, Replicas: []int32{3, 2}},
		AlterConfigs{Resource: ResourceTopic, Name: "t", Set: map[string]string{"retention.ms": "100"}, Delete: []string{"segment.ms"}},
		AlterConfigs{Resource: ResourceBroker, Name: "", Set: map[string]string{"x": "y"}},
		AllocateProducerIDs{BrokerID: 1, Start: 0, Count: 1000},
		CreateACLs{ACLs: []ACL{aclRead, aclWrite}},
		DeleteACLs{ACLs: []ACL{aclWrite}},
		scram("alice", SCRAMSHA256, 4096),
		DeleteSCRAMCredential{User: "alice", Mechanism: SCRAMSHA512},
		UnregisterBroker{ID: 3},
		ReassignPartition{TopicID: idA, Partition: 0, Replicas: []int32{2, 3, 1}, ISR: []int32{1, 2, 3}, Leader: 1,
			Adding: []int32{3}, Removing: []int32{1}},
		ReassignPartition{TopicID: idA, Partition: 1, ExpectedPartitionEpoch: 1, Replicas: []int32{3}, ISR: []int32{3}, Leader: 3, LeaderEpoch: 1},
		AlterClientQuotas{Changes: []QuotaChange{
			{Entity: QuotaEntity{User: Named("alice")}, Set: map[string]float64{QuotaProducerByteRate: 1024, QuotaRequestPercentage: 12.5}},
			{Entity: QuotaEntity{User: DefaultName, ClientID: Named("app")}, Delete: []string{QuotaConsumerByteRate}},
			{Entity: QuotaEntity{IP: Named("127.0.0.1")}, Set: map[string]float64{QuotaConnectionCreationRate: 10}},
		}},
	}
}

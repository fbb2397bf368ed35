package raft

import (
	"errors"
	"reflect"
	"testing"
)

// electionState builds a state with brokers 1-4 (those in fenced fenced)
// and topic "t" holding the single partition p.
func electionState(t *testing.T, p Partition, fenced ...int32) *testFSM {
	t.Helper()
	f := newTestFSM()
	f.mustApply(t, brokers(1, 2, 3, 4)...)
	for _, b := range fenced {
		f.mustApply(t, FenceBroker{ID: b, Epoch: -1})
	}
	if !p.Reassigning() {
		f.mustApply(t, CreateTopic{Topic: Topic{Name: "t", ID: idA, Partitions: []Partition{p}}})
		return f
	}
	// CreateTopic carries no reassignment: create the partition one epoch
	// earlier and start the reassignment with ReassignPartition.
	created := p
	created.AddingReplicas, created.RemovingReplicas = nil, nil
	created.PartitionEpoch--
	f.mustApply(t, CreateTopic{Topic: Topic{Name: "t", ID: idA, Partitions: []Partition{created}}},
		ReassignPartition{TopicID: idA, ExpectedPartitionEpoch: created.PartitionEpoch, Replicas: p.Replicas, ISR: p.ISR,
			Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, Adding: p.AddingReplicas, Removing: p.RemovingReplicas})
	return f
}

func TestElectLeader(t *testing.T) {
	tests := []struct {
		name    string
		typ     ElectionType
		fenced  []int32
		p       Partition
		want    *PartitionChange
		wantErr error
	}{
		{"preferred moves leadership back", ElectPreferred, nil, part(0, []int32{1, 2, 3}, []int32{2, 3, 1}, 2, 4, 7),
			&PartitionChange{Leader: 1, ISR: []int32{2, 3, 1}, LeaderEpoch: 5, ExpectedPartitionEpoch: 7}, nil},
		{"preferred already leads", ElectPreferred, nil, part(0, []int32{1, 2}, []int32{1, 2}, 1, 0, 0), nil, ErrElectionNotNeeded},
		{"preferred out of isr", ElectPreferred, nil, part(0, []int32{1, 2}, []int32{2}, 2, 0, 0), nil, ErrPreferredLeaderNotAvailable},
		{"preferred fenced", ElectPreferred, []int32{1}, part(0, []int32{1, 2}, []int32{1, 2}, 2, 0, 0), nil, ErrPreferredLeaderNotAvailable},
		{"preferred for leaderless partition", ElectPreferred, nil, part(0, []int32{1, 2}, []int32{1}, -1, 3, 3),
			&PartitionChange{Leader: 1, ISR: []int32{1}, LeaderEpoch: 4, ExpectedPartitionEpoch: 3}, nil},
		{"unclean with a leader", ElectUnclean, nil, part(0, []int32{1, 2}, []int32{2}, 2, 0, 0), nil, ErrElectionNotNeeded},
		{"unclean prefers a live isr member", ElectUnclean, nil, part(0, []int32{1, 2, 3}, []int32{3}, -1, 1, 1),
			&PartitionChange{Leader: 3, ISR: []int32{3}, LeaderEpoch: 2, ExpectedPartitionEpoch: 1}, nil},
		{"unclean elects outside the isr", ElectUnclean, []int32{1}, part(0, []int32{1, 2, 3}, []int32{1}, -1, 1, 1),
			&PartitionChange{Leader: 2, ISR: []int32{2}, LeaderEpoch: 2, ExpectedPartitionEpoch: 1}, nil},
		{"unclean without live replicas", ElectUnclean, []int32{1, 2}, part(0, []int32{1, 2}, []int32{1}, -1, 1, 1), nil, ErrEligibleLeadersNotAvailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := electionState(t, tc.p, tc.fenced...)
			s := f.current()
			cmd, err := ElectLeader(s, s.Topics["t"], 0, tc.typ)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if tc.want == nil {
				if cmd != nil {
					t.Fatalf("got command %+v", cmd)
				}
				return
			}
			w := *tc.want
			w.TopicID = idA
			if !reflect.DeepEqual(cmd, w) {
				t.Fatalf("got %+v\nwant %+v", cmd, w)
			}
			f.mustApply(t, cmd)
			if _, err := f.apply(cmd); !errors.Is(err, ErrStalePartitionEpoch) {
				t.Fatalf("second apply: %v, want stale", err)
			}
		})
	}
	f := electionState(t, part(0, []int32{1}, []int32{1}, 1, 0, 0))
	if _, err := ElectLeader(f.current(), f.current().Topics["t"], 1, ElectPreferred); !errors.Is(err, ErrUnknownPartition) {
		t.Fatalf("unknown partition: %v", err)
	}
}

func TestRebalanceCommands(t *testing.T) {
	// Broker 1 is preferred for 4 partitions and leads 1 of them (75%
	// imbalanced); broker 2 is preferred for 1 and leads it.
	parts := []Partition{
		part(0, []int32{1, 2}, []int32{1, 2}, 1, 0, 0),
		part(1, []int32{1, 2}, []int32{1, 2}, 2, 1, 1),
		part(2, []int32{1, 2}, []int32{2}, 2, 1, 1), // 1 not in the ISR: stays
		part(3, []int32{1, 3}, []int32{3, 1}, 3, 1, 1),
		part(4, []int32{2, 1}, []int32{2, 1}, 2, 0, 0),
	}
	f := newTestFSM()
	f.mustApply(t, brokers(1, 2, 3)...)
	f.mustApply(t, CreateTopic{Topic: Topic{Name: "t", ID: idA, Partitions: parts}})
	s := f.current()
	got := RebalanceCommands(s, 10)
	want := []Command{
		PartitionChange{TopicID: idA, Partition: 1, Leader: 1, ISR: []int32{1, 2}, LeaderEpoch: 2, ExpectedPartitionEpoch: 1},
		PartitionChange{TopicID: idA, Partition: 3, Leader: 1, ISR: []int32{3, 1}, LeaderEpoch: 2, ExpectedPartitionEpoch: 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	// 3 of 4 not led is 75%: a threshold at or above it leaves them.
	if got := RebalanceCommands(s, 75); len(got) != 0 {
		t.Fatalf("within the allowed imbalance: %+v", got)
	}
	// A fenced preferred broker gets nothing.
	f.mustApply(t, FenceBroker{ID: 1, Epoch: -1})
	if got := RebalanceCommands(f.current(), 10); len(got) != 0 {
		t.Fatalf("fenced preferred replica: %+v", got)
	}
}

func TestReassignCommand(t *testing.T) {
	tests := []struct {
		name    string
		p       Partition
		target  []int32
		want    *ReassignPartition
		wantErr error
	}{
		{"start: add 3, remove 1", part(0, []int32{1, 2}, []int32{1, 2}, 1, 2, 5), []int32{2, 3},
			&ReassignPartition{Replicas: []int32{2, 3, 1}, ISR: []int32{1, 2}, Leader: 1, LeaderEpoch: 2, ExpectedPartitionEpoch: 5,
				Adding: []int32{3}, Removing: []int32{1}}, nil},
		{"pure removal completes at once and moves the leader", part(0, []int32{1, 2}, []int32{1, 2}, 1, 2, 5), []int32{2},
			&ReassignPartition{Replicas: []int32{2}, ISR: []int32{2}, Leader: 2, LeaderEpoch: 3, ExpectedPartitionEpoch: 5}, nil},
		{"reorder completes at once", part(0, []int32{1, 2}, []int32{1, 2}, 1, 2, 5), []int32{2, 1},
			&ReassignPartition{Replicas: []int32{2, 1}, ISR: []int32{1, 2}, Leader: 1, LeaderEpoch: 2, ExpectedPartitionEpoch: 5}, nil},
		{"same replicas: nothing", part(0, []int32{1, 2}, []int32{1, 2}, 1, 2, 5), []int32{1, 2}, nil, nil},
		{"removal waits for target in isr", part(0, []int32{1, 2, 3}, []int32{1, 2}, 1, 0, 0), []int32{2, 3},
			&ReassignPartition{Replicas: []int32{2, 3, 1}, ISR: []int32{1, 2}, Leader: 1, Removing: []int32{1}}, nil},
		{"cancel reverts", Partition{Replicas: []int32{2, 3, 1}, ISR: []int32{1, 2, 3}, Leader: 3, LeaderEpoch: 4, PartitionEpoch: 6,
			AddingReplicas: []int32{3}, RemovingReplicas: []int32{1}}, nil,
			&ReassignPartition{Replicas: []int32{2, 1}, ISR: []int32{1, 2}, Leader: 2, LeaderEpoch: 5, ExpectedPartitionEpoch: 6}, nil},
		{"change target mid-flight", Partition{Replicas: []int32{2, 3, 1}, ISR: []int32{1, 2}, Leader: 1, PartitionEpoch: 1,
			AddingReplicas: []int32{3}, RemovingReplicas: []int32{1}}, []int32{4, 2},
			&ReassignPartition{Replicas: []int32{4, 2, 1}, ISR: []int32{1, 2}, Leader: 1, ExpectedPartitionEpoch: 1,
				Adding: []int32{4}, Removing: []int32{1}}, nil},
		{"cancel without reassignment", part(0, []int32{1, 2}, []int32{1, 2}, 1, 0, 0), nil, nil, ErrNoReassignmentInProgress},
		{"empty target", part(0, []int32{1, 2}, []int32{1, 2}, 1, 0, 0), []int32{}, nil, ErrInvalidReplicaAssignment},
		{"duplicate broker", part(0, []int32{1, 2}, []int32{1, 2}, 1, 0, 0), []int32{2, 2}, nil, ErrInvalidReplicaAssignment},
		{"unknown broker", part(0, []int32{1, 2}, []int32{1, 2}, 1, 0, 0), []int32{2, 9}, nil, ErrInvalidReplicaAssignment},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := electionState(t, tc.p)
			cmd, err := ReassignCommand(f.current(), "t", 0, tc.target)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if tc.want == nil {
				if cmd != nil {
					t.Fatalf("got command %+v", cmd)
				}
				return
			}
			w := *tc.want
			w.TopicID = idA
			if !reflect.DeepEqual(cmd, w) {
				t.Fatalf("got  %+v\nwant %+v", cmd, w)
			}
			f.mustApply(t, cmd)
			p := f.current().Topics["t"].Partitions[0]
			if !reflect.DeepEqual(p.AddingReplicas, nilIfEmpty(w.Adding)) || !reflect.DeepEqual(p.RemovingReplicas, nilIfEmpty(w.Removing)) {
				t.Fatalf("applied partition %+v", p)
			}
		})
	}
	f := electionState(t, part(0, []int32{1}, []int32{1}, 1, 0, 0))
	if _, err := ReassignCommand(f.current(), "nope", 0, []int32{1}); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("unknown topic: %v", err)
	}
	if _, err := ReassignCommand(f.current(), "t", 3, []int32{1}); !errors.Is(err, ErrUnknownPartition) {
		t.Fatalf("unknown partition: %v", err)
	}
}

// TestReassignmentLifecycle drives {1,2} -> {2,3} through the pure
// functions: start, ISR expansion by the leader, completion moving the
// leader away from the removed broker.
func TestReassignmentLifecycle(t *testing.T) {
	f := electionState(t, part(0, []int32{1, 2}, []int32{1, 2}, 1, 0, 0))
	cmd, err := ReassignCommand(f.current(), "t", 0, []int32{2, 3})
	if err != nil {
		t.Fatal(err)
	}
	f.mustApply(t, cmd)
	if got := CompleteReassignmentCommands(f.current()); len(got) != 0 {
		t.Fatalf("completed before 3 joined the isr: %+v", got)
	}
	p := f.current().Topics["t"].Partitions[0]
	f.mustApply(t, PartitionChange{TopicID: idA, Leader: 1, ISR: []int32{1, 2, 3}, LeaderEpoch: p.LeaderEpoch, ExpectedPartitionEpoch: p.PartitionEpoch})
	if got := f.current().Topics["t"].Partitions[0]; !got.Reassigning() {
		t.Fatalf("isr change ended the reassignment: %+v", got)
	}
	done := CompleteReassignmentCommands(f.current())
	want := []Command{ReassignPartition{TopicID: idA, ExpectedPartitionEpoch: 2, Replicas: []int32{2, 3}, ISR: []int32{2, 3}, Leader: 2, LeaderEpoch: 1}}
	if !reflect.DeepEqual(done, want) {
		t.Fatalf("got  %+v\nwant %+v", done, want)
	}
	f.mustApply(t, done...)
	if got := f.current().Topics["t"].Partitions[0]; got.Reassigning() || got.Leader != 2 {
		t.Fatalf("after completion %+v", got)
	}
	if got := CompleteReassignmentCommands(f.current()); len(got) != 0 {
		t.Fatalf("nothing left to complete: %+v", got)
	}
}

func TestReassignPartitionApply(t *testing.T) {
	base := []Command{brokers(1, 2, 3)[0], brokers(1, 2, 3)[1], brokers(1, 2, 3)[2], CreateTopic{Topic: topic("t", idA, 1, 1, 2)}}
	tests := []struct {
		name    string
		cmd     ReassignPartition
		wantErr error
	}{
		{"ok", ReassignPartition{TopicID: idA, Replicas: []int32{2, 3, 1}, ISR: []int32{1, 2}, Leader: 1, Adding: []int32{3}, Removing: []int32{1}}, nil},
		{"adding outside replicas", ReassignPartition{TopicID: idA, Replicas: []int32{2, 1}, ISR: []int32{1, 2}, Leader: 1, Adding: []int32{3}}, ErrInvalidReplicaAssignment},
		{"adding and removing overlap", ReassignPartition{TopicID: idA, Replicas: []int32{2, 1}, ISR: []int32{1, 2}, Leader: 1, Adding: []int32{2}, Removing: []int32{2}}, ErrInvalidReplicaAssignment},
		{"stale", ReassignPartition{TopicID: idA, ExpectedPartitionEpoch: 4, Replicas: []int32{1, 2}, ISR: []int32{1, 2}, Leader: 1}, ErrStalePartitionEpoch},
		{"leader change without epoch bump", ReassignPartition{TopicID: idA, Replicas: []int32{1, 2}, ISR: []int32{1, 2}, Leader: 2}, ErrInvalidPartitionChange},
		{"unknown topic", ReassignPartition{TopicID: idB, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}, ErrUnknownTopic},
		{"unknown partition", ReassignPartition{TopicID: idA, Partition: 1, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}, ErrUnknownPartition},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newTestFSM()
			f.mustApply(t, base...)
			before := f.current()
			_, err := f.apply(tc.cmd)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				if !reflect.DeepEqual(withoutVersion(before), withoutVersion(f.current())) {
					t.Fatal("failed command changed the state")
				}
				return
			}
			p := f.current().Topics["t"].Partitions[0]
			if !reflect.DeepEqual(p.AddingReplicas, tc.cmd.Adding) || p.PartitionEpoch != 1 {
				t.Fatalf("applied %+v", p)
			}
			// A snapshot keeps the reassignment.
			s, err := decodeState(encodeState(f.current()))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(s.Topics["t"].Partitions[0], p) {
				t.Fatalf("snapshot round trip: %+v vs %+v", s.Topics["t"].Partitions[0], p)
			}
			// A plain replica change ends the reassignment.
			f.mustApply(t, PartitionChange{TopicID: idA, Leader: 1, ISR: []int32{1}, ExpectedPartitionEpoch: 1, Replicas: []int32{1}})
			if p := f.current().Topics["t"].Partitions[0]; p.Reassigning() {
				t.Fatalf("replica change kept the reassignment: %+v", p)
			}
		})
	}
}

// TestDecodeStateV2 reads a snapshot of the format before reassignments.
func TestDecodeStateV2(t *testing.T) {
	f := newTestFSM()
	f.mustApply(t, brokers(1, 2)...)
	f.mustApply(t, CreateTopic{Topic: topic("t", idA, 2, 1, 2)})
	b := encodeState(f.current())
	// A state with no reassignment ends with an empty section (one 0 byte).
	v2 := append([]byte(snapshotMagicV2), b[len(snapshotMagic):len(b)-1]...)
	s, err := decodeState(v2)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(withoutVersion(s), withoutVersion(f.current())) {
		t.Fatal("v2 snapshot decodes to a different state")
	}
}

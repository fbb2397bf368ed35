package raft

import (
	"errors"
	"reflect"
	"slices"
	"testing"
)

// part builds a partition for controller tests.
func part(i int32, replicas, isr []int32, leader, leaderEpoch, partEpoch int32) Partition {
	return Partition{Index: i, Replicas: replicas, ISR: isr, Leader: leader, LeaderEpoch: leaderEpoch, PartitionEpoch: partEpoch}
}

func TestFenceCommands(t *testing.T) {
	tid := [16]byte{7}
	tests := []struct {
		name      string
		fenced    []int32 // brokers already fenced besides the one being fenced
		configs   map[string]string
		clusterUn bool
		p         Partition
		want      *PartitionChange // nil: no change for the partition
	}{
		{"leader moves to next isr member", nil, nil, false, part(0, []int32{1, 2, 3}, []int32{1, 2, 3}, 1, 4, 9),
			&PartitionChange{Leader: 2, ISR: []int32{2, 3}, LeaderEpoch: 5, ExpectedPartitionEpoch: 9}},
		{"replica order, not isr order", nil, nil, false, part(0, []int32{1, 3, 2}, []int32{2, 3, 1}, 1, 0, 0),
			&PartitionChange{Leader: 3, ISR: []int32{2, 3}, LeaderEpoch: 1}},
		{"skips fenced isr member", []int32{2}, nil, false, part(0, []int32{1, 2, 3}, []int32{1, 2, 3}, 1, 0, 0),
			&PartitionChange{Leader: 3, ISR: []int32{2, 3}, LeaderEpoch: 1}},
		{"follower leaves isr, leader kept", nil, nil, false, part(0, []int32{2, 1}, []int32{2, 1}, 2, 3, 3),
			&PartitionChange{Leader: 2, ISR: []int32{2}, LeaderEpoch: 3, ExpectedPartitionEpoch: 3}},
		{"last isr member: leaderless, isr kept", nil, nil, false, part(0, []int32{1, 2}, []int32{1}, 1, 2, 2),
			&PartitionChange{Leader: -1, ISR: []int32{1}, LeaderEpoch: 3, ExpectedPartitionEpoch: 2}},
		{"unclean by topic config", nil, map[string]string{"unclean.leader.election.enable": "true"}, false, part(0, []int32{1, 2}, []int32{1}, 1, 2, 2),
			&PartitionChange{Leader: 2, ISR: []int32{2}, LeaderEpoch: 3, ExpectedPartitionEpoch: 2}},
		{"unclean by cluster default", nil, nil, true, part(0, []int32{1, 2}, []int32{1}, 1, 0, 0),
			&PartitionChange{Leader: 2, ISR: []int32{2}, LeaderEpoch: 1}},
		{"topic config overrides cluster default", nil, map[string]string{"unclean.leader.election.enable": "false"}, true, part(0, []int32{1, 2}, []int32{1}, 1, 0, 0),
			&PartitionChange{Leader: -1, ISR: []int32{1}, LeaderEpoch: 1}},
		{"not involved", nil, nil, false, part(0, []int32{2, 3, 1}, []int32{2, 3}, 2, 0, 0), nil},
		{"already leaderless, last member", nil, nil, false, part(0, []int32{1, 2}, []int32{1}, -1, 5, 5), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newTestFSM()
			f.mustApply(t, brokers(1, 2, 3)...)
			for _, b := range tc.fenced {
				f.mustApply(t, FenceBroker{ID: b, Epoch: -1})
			}
			if tc.clusterUn {
				f.mustApply(t, AlterConfigs{Resource: ResourceBroker, Set: map[string]string{"unclean.leader.election.enable": "true"}})
			}
			tp := Topic{Name: "t", ID: tid, Configs: tc.configs, Partitions: []Partition{tc.p}}
			f.mustApply(t, CreateTopic{Topic: tp})
			cmds := FenceCommands(f.current(), 1)
			want := []Command{FenceBroker{ID: 1, Epoch: 1}}
			if tc.want != nil {
				w := *tc.want
				w.TopicID = tid
				want = append(want, w)
			}
			if !reflect.DeepEqual(cmds, want) {
				t.Fatalf("commands\n got %+v\nwant %+v", cmds, want)
			}
			res, errs := applyAllFSM(f, cmds)
			for i, err := range errs {
				if err != nil {
					t.Fatalf("command %d (%+v) does not apply: %v %v", i, cmds[i], err, res[i])
				}
			}
			if !f.current().Brokers[1].Fenced {
				t.Fatal("broker not fenced")
			}
			// Computed from a state that is now stale, the changes are refused.
			if len(cmds) > 1 {
				if _, err := f.apply(cmds[1]); err == nil {
					t.Fatal("stale partition change applied twice")
				}
			}
		})
	}
	if FenceCommands(newState(), 1) != nil {
		t.Fatal("commands for an unknown broker")
	}
}

func TestUnfenceCommands(t *testing.T) {
	tid := [16]byte{7}
	tests := []struct {
		name    string
		fenced  []int32 // brokers fenced besides broker 1, the one coming back
		configs map[string]string
		p       Partition
		want    *PartitionChange // nil: no change for the partition
	}{
		{"leaderless, in isr: leads", nil, nil, part(0, []int32{1, 2}, []int32{1}, -1, 3, 4),
			&PartitionChange{Leader: 1, ISR: []int32{1}, LeaderEpoch: 4, ExpectedPartitionEpoch: 4}},
		{"leaderless, isr of several, all back", []int32{2}, nil, part(0, []int32{2, 1}, []int32{2, 1}, -1, 0, 7),
			&PartitionChange{Leader: 1, ISR: []int32{2, 1}, LeaderEpoch: 1, ExpectedPartitionEpoch: 7}},
		{"leaderless, not in isr: waits for the isr", []int32{2}, nil, part(0, []int32{1, 2}, []int32{2}, -1, 0, 0), nil},
		{"leaderless, not in isr, unclean allowed: leads alone", []int32{2}, map[string]string{"unclean.leader.election.enable": "true"},
			part(0, []int32{1, 2}, []int32{2}, -1, 5, 6), &PartitionChange{Leader: 1, ISR: []int32{1}, LeaderEpoch: 6, ExpectedPartitionEpoch: 6}},
		{"unclean allowed but an isr member is live", nil, map[string]string{"unclean.leader.election.enable": "true"},
			part(0, []int32{1, 2}, []int32{2}, -1, 0, 0), nil},
		{"has a leader", nil, nil, part(0, []int32{1, 2}, []int32{1, 2}, 2, 0, 0), nil},
		{"not a replica", nil, map[string]string{"unclean.leader.election.enable": "true"}, part(0, []int32{2, 3}, []int32{2}, -1, 0, 0), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newTestFSM()
			f.mustApply(t, brokers(1, 2, 3)...)
			f.mustApply(t, CreateTopic{Topic: Topic{Name: "t", ID: tid, Configs: tc.configs, Partitions: []Partition{tc.p}}})
			f.mustApply(t, FenceBroker{ID: 1, Epoch: -1})
			for _, b := range tc.fenced {
				f.mustApply(t, FenceBroker{ID: b, Epoch: -1})
			}
			cmds := UnfenceCommands(f.current(), 1)
			want := []Command{UnfenceBroker{ID: 1, Epoch: 1}}
			if tc.want != nil {
				w := *tc.want
				w.TopicID = tid
				want = append(want, w)
			}
			if !reflect.DeepEqual(cmds, want) {
				t.Fatalf("commands\n got %+v\nwant %+v", cmds, want)
			}
			if _, errs := applyAllFSM(f, cmds); slices.ContainsFunc(errs, func(err error) bool { return err != nil }) {
				t.Fatalf("apply: %v", errs)
			}
			checkInvariants(t, f.current())
			if f.current().Brokers[1].Fenced {
				t.Fatal("still fenced")
			}
			// Computed from a state that is now stale, the changes are refused.
			if len(cmds) > 1 {
				if _, err := f.apply(cmds[1]); !errors.Is(err, ErrStalePartitionEpoch) {
					t.Fatalf("stale partition change: %v", err)
				}
			}
		})
	}
	// Several topics, visited in name order; a re-registered broker's
	// current epoch is used.
	f := newTestFSM()
	f.mustApply(t, brokers(1, 2)...)
	f.mustApply(t, CreateTopic{Topic: Topic{Name: "b", ID: idB, Partitions: []Partition{part(0, []int32{1}, []int32{1}, -1, 0, 0)}}},
		CreateTopic{Topic: Topic{Name: "a", ID: idA, Partitions: []Partition{part(0, []int32{1, 2}, []int32{1}, -1, 2, 2),
			part(1, []int32{1, 2}, []int32{1, 2}, 2, 0, 0)}}},
		RegisterBroker{ID: 1, IncarnationID: idC, Fenced: true})
	epoch := f.current().Brokers[1].Epoch
	want := []Command{UnfenceBroker{ID: 1, Epoch: epoch},
		PartitionChange{TopicID: idA, Partition: 0, Leader: 1, ISR: []int32{1}, LeaderEpoch: 3, ExpectedPartitionEpoch: 2},
		PartitionChange{TopicID: idB, Partition: 0, Leader: 1, ISR: []int32{1}, LeaderEpoch: 1}}
	if cmds := UnfenceCommands(f.current(), 1); !reflect.DeepEqual(cmds, want) {
		t.Fatalf("commands\n got %+v\nwant %+v", cmds, want)
	}
	if UnfenceCommands(newState(), 1) != nil {
		t.Fatal("commands for an unknown broker")
	}
}

// TestFenceUnfenceRoundTrip: fencing then unfencing every broker in turn
// keeps every partition valid and, with three live brokers at the end,
// every partition led.
func TestFenceUnfenceRoundTrip(t *testing.T) {
	f := newTestFSM()
	f.mustApply(t, brokers(1, 2, 3)...)
	for i := range 10 {
		ct, err := NewCreateTopic(string(rune('a'+i)), 3, 2, nil, f.current().SortedBrokers())
		if err != nil {
			t.Fatal(err)
		}
		f.mustApply(t, ct)
	}
	for _, id := range []int32{1, 2, 3} {
		for _, build := range []func(*State, int32) []Command{FenceCommands, UnfenceCommands} {
			_, errs := applyAllFSM(f, build(f.current(), id))
			for _, err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			checkInvariants(t, f.current())
		}
	}
	for _, tp := range f.current().Topics {
		for _, p := range tp.Partitions {
			if p.Leader == -1 {
				t.Fatalf("%s-%d has no leader after all brokers returned: %+v", tp.Name, p.Index, p)
			}
		}
	}
}

// applyAllFSM applies cmds in order, each as its own log entry, and
// reports each outcome as Node.ApplyAll would.
func applyAllFSM(f *testFSM, cmds []Command) ([]Result, []error) {
	res := make([]Result, len(cmds))
	errs := make([]error, len(cmds))
	for i, c := range cmds {
		res[i], errs[i] = f.apply(c)
	}
	return res, errs
}

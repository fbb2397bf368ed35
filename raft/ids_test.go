package raft

import (
	"encoding/base64"
	"errors"
	"reflect"
	"testing"
)

func TestNewTopicID(t *testing.T) {
	seen := map[[16]byte]bool{}
	for range 1000 {
		id := NewTopicID()
		if id == ([16]byte{}) || id == ([16]byte{15: 1}) || FormatID(id)[0] == '-' {
			t.Fatalf("reserved or awkward id %x", id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %x", id)
		}
		seen[id] = true
	}
}

func TestNewClusterID(t *testing.T) {
	id := NewClusterID()
	b, err := base64.RawURLEncoding.DecodeString(id)
	if len(id) != 22 || err != nil || len(b) != 16 {
		t.Fatalf("cluster id %q: %v", id, err)
	}
	if NewClusterID() == id {
		t.Fatal("cluster ids repeat")
	}
}

func TestAssignRoundRobin(t *testing.T) {
	tests := []struct {
		name       string
		partitions int32
		rf         int16
		brokers    []int32
		start      int
		want       [][]int32
		wantErr    error
	}{
		{"rf1", 3, 1, []int32{1, 2, 3}, 0, [][]int32{{1}, {2}, {3}}, nil},
		{"rf2 wraps", 3, 2, []int32{1, 2, 3}, 1, [][]int32{{2, 3}, {3, 1}, {1, 2}}, nil},
		{"rf all", 2, 3, []int32{4, 5, 6}, 5, [][]int32{{6, 4, 5}, {4, 5, 6}}, nil},
		{"negative start", 1, 1, []int32{4, 5}, -1, [][]int32{{5}}, nil},
		{"rf too big", 1, 3, []int32{1, 2}, 0, nil, ErrInvalidReplicationFactor},
		{"rf zero", 1, 0, []int32{1}, 0, nil, ErrInvalidReplicationFactor},
		{"no brokers", 1, 1, nil, 0, nil, ErrInvalidReplicationFactor},
		{"no partitions", 0, 1, []int32{1}, 0, nil, ErrInvalidPartitions},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := assignRoundRobin(tc.partitions, tc.rf, tc.brokers, tc.start)
			if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNewCreateTopic(t *testing.T) {
	bs := []Broker{{ID: 3}, {ID: 1}, {ID: 2, Fenced: true}, {ID: 5}}
	ct, err := NewCreateTopic("x", 6, 2, map[string]string{"a": "b"}, bs)
	if err != nil {
		t.Fatal(err)
	}
	tp := ct.Topic
	if tp.Name != "x" || tp.ID == ([16]byte{}) || len(tp.Partitions) != 6 || tp.Configs["a"] != "b" {
		t.Fatalf("topic %+v", tp)
	}
	leaders := map[int32]int{}
	for i, p := range tp.Partitions {
		if p.Index != int32(i) || len(p.Replicas) != 2 || p.Leader != p.Replicas[0] || !reflect.DeepEqual(p.ISR, p.Replicas) ||
			p.LeaderEpoch != 0 || p.PartitionEpoch != 0 || p.Replicas[0] == p.Replicas[1] {
			t.Fatalf("partition %+v", p)
		}
		for _, r := range p.Replicas {
			if r == 2 {
				t.Fatal("replica on a fenced broker")
			}
		}
		leaders[p.Leader]++
	}
	if len(leaders) != 3 || leaders[1] != 2 || leaders[3] != 2 || leaders[5] != 2 {
		t.Fatalf("leaders not spread round-robin: %v", leaders)
	}
	f := newTestFSM()
	if _, err := f.apply(ct); err != nil {
		t.Fatalf("built command does not apply: %v", err)
	}
	if _, err := NewCreateTopic("x", 1, 4, nil, bs); !errors.Is(err, ErrInvalidReplicationFactor) {
		t.Fatalf("rf over unfenced brokers: %v", err)
	}
}

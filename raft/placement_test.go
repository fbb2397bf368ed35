package raft

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
)

// racked builds brokers from "id:rack" pairs; a "!" suffix fences one.
func racked(specs ...string) []Broker {
	var out []Broker
	for _, s := range specs {
		var b Broker
		var rack string
		if _, err := fmt.Sscanf(s, "%d:%s", &b.ID, &rack); err != nil {
			fmt.Sscanf(s, "%d", &b.ID)
		}
		if len(rack) > 0 && rack[len(rack)-1] == '!' {
			b.Fenced, rack = true, rack[:len(rack)-1]
		}
		b.Rack = rack
		out = append(out, b)
	}
	return out
}

func TestPlaceReplicasTable(t *testing.T) {
	tests := []struct {
		name         string
		brokers      []Broker
		first, count int32
		rf           int16
		start        int
		want         [][]int32
		wantErr      error
	}{
		{"no racks is round-robin", racked("1", "2", "3"), 0, 3, 2, 0,
			[][]int32{{1, 2}, {2, 3}, {3, 1}}, nil},
		{"one broker per rack", racked("1:a", "2:b", "3:c"), 0, 3, 3, 0,
			[][]int32{{1, 2, 3}, {2, 3, 1}, {3, 1, 2}}, nil},
		// Rack order follows names, not ids.
		{"racks sorted by name", racked("1:c", "2:b", "3:a"), 0, 3, 1, 0,
			[][]int32{{3}, {2}, {1}}, nil},
		// Two brokers per rack, rf 2: every broker leads once and holds two
		// replicas; no partition has both replicas in one rack.
		{"two per rack rf2", racked("1:a", "2:a", "3:b", "4:b", "5:c", "6:c"), 0, 6, 2, 0,
			[][]int32{{1, 4}, {3, 6}, {5, 2}, {2, 3}, {4, 5}, {6, 1}}, nil},
		// rf above the rack count: every rack once, then again.
		{"rf above racks", racked("1:a", "2:a", "3:b", "4:b"), 0, 2, 3, 0,
			[][]int32{{1, 4, 2}, {3, 2, 4}}, nil},
		// CreatePartitions continues the pattern from the first new index.
		{"continues at first", racked("1:a", "2:a", "3:b", "4:b", "5:c", "6:c"), 3, 3, 2, 0,
			[][]int32{{2, 3}, {4, 5}, {6, 1}}, nil},
		{"fenced skipped", racked("1:a", "2:b!", "3:b", "4:c"), 0, 3, 3, 0,
			[][]int32{{1, 3, 4}, {3, 4, 1}, {4, 1, 3}}, nil},
		// Brokers without a rack form one rack named "" (KRaft), sorted first.
		{"mixed racks", racked("1", "2:a", "3:b"), 0, 3, 2, 0,
			[][]int32{{1, 2}, {2, 3}, {3, 1}}, nil},
		{"negative start", racked("1:a", "2:b"), 0, 2, 1, -1,
			[][]int32{{2}, {1}}, nil},
		{"duplicate broker", []Broker{{ID: 1, Rack: "a"}, {ID: 1, Rack: "a"}, {ID: 2, Rack: "b"}}, 0, 1, 2, 0,
			[][]int32{{1, 2}}, nil},
		{"rf above unfenced", racked("1:a", "2:b!"), 0, 1, 2, 0, nil, ErrInvalidReplicationFactor},
		{"rf zero", racked("1:a"), 0, 1, 0, 0, nil, ErrInvalidReplicationFactor},
		{"no brokers", nil, 0, 1, 1, 0, nil, ErrInvalidReplicationFactor},
		{"no partitions", racked("1:a"), 0, 0, 1, 0, nil, ErrInvalidPartitions},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := PlaceReplicas(tc.brokers, tc.first, tc.count, tc.rf, tc.start)
			if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestPlaceReplicasMatchesRoundRobin: without racks the placement is the
// round-robin of assignRoundRobin, so clusters without racks place exactly
// as before.
func TestPlaceReplicasMatchesRoundRobin(t *testing.T) {
	for n := 1; n <= 5; n++ {
		var bs []Broker
		var ids []int32
		for i := range n {
			bs = append(bs, Broker{ID: int32(10 + i)})
			ids = append(ids, int32(10+i))
		}
		for rf := int16(1); int(rf) <= n; rf++ {
			for _, start := range []int{0, 1, 7, 255} {
				want, err := assignRoundRobin(9, rf, ids, start)
				if err != nil {
					t.Fatal(err)
				}
				got, err := PlaceReplicas(bs, 0, 9, rf, start)
				if err != nil || !reflect.DeepEqual(got, want) {
					t.Fatalf("n=%d rf=%d start=%d: got %v, %v; want %v", n, rf, start, got, err, want)
				}
			}
		}
	}
}

// TestPlaceReplicasSpread checks the properties over many cluster shapes:
// distinct replicas, min(racks, rf) racks per partition, determinism, and
// with equal racks an even spread of leaders and replicas over brokers.
func TestPlaceReplicasSpread(t *testing.T) {
	for racks := 1; racks <= 4; racks++ {
		for per := 1; per <= 3; per++ {
			var bs []Broker
			rackOf := map[int32]string{}
			for r := range racks {
				for i := range per {
					id := int32(r*10 + i + 1)
					bs = append(bs, Broker{ID: id, Rack: string(rune('a' + r))})
					rackOf[id] = string(rune('a' + r))
				}
			}
			n := racks * per
			for rf := int16(1); int(rf) <= n; rf++ {
				for _, start := range []int{0, 5} {
					parts := int32(n * 4)
					got, err := PlaceReplicas(bs, 0, parts, rf, start)
					if err != nil {
						t.Fatal(err)
					}
					again, _ := PlaceReplicas(slices.Clone(bs), 0, parts, rf, start)
					if !reflect.DeepEqual(got, again) {
						t.Fatalf("not deterministic")
					}
					leaders := map[int32]int{}
					replicas := map[int32]int{}
					for p, reps := range got {
						seen := map[int32]bool{}
						rs := map[string]bool{}
						for _, id := range reps {
							if seen[id] {
								t.Fatalf("%d racks x %d rf %d: partition %d repeats broker %d: %v", racks, per, rf, p, id, reps)
							}
							seen[id] = true
							rs[rackOf[id]] = true
							replicas[id]++
						}
						if len(reps) != int(rf) || len(rs) != min(racks, int(rf)) {
							t.Fatalf("%d racks x %d rf %d: partition %d on %v spans %d racks", racks, per, rf, p, reps, len(rs))
						}
						leaders[reps[0]]++
					}
					for _, b := range bs {
						if leaders[b.ID] != 4 {
							t.Fatalf("%d racks x %d rf %d: broker %d leads %d partitions, want 4: %v", racks, per, rf, b.ID, leaders[b.ID], got)
						}
						if replicas[b.ID] != 4*int(rf) {
							t.Fatalf("%d racks x %d rf %d: broker %d holds %d replicas, want %d: %v", racks, per, rf, b.ID, replicas[b.ID], 4*int(rf), got)
						}
					}
				}
			}
		}
	}
}

// assignRoundRobin places partitions x replicationFactor replicas on brokers
// round-robin: partition p gets brokers[(start+p+j) % n] for j in
// [0, replicationFactor), so leaders (the first replica) rotate across
// brokers and no broker holds two replicas of one partition. brokers must be
// distinct; the result is fresh. It was the placement before racks, and
// stays as the reference PlaceReplicas must equal when no broker has a rack.
func assignRoundRobin(partitions int32, replicationFactor int16, brokers []int32, start int) ([][]int32, error) {
	if partitions <= 0 {
		return nil, fmt.Errorf("%w: %d partitions", ErrInvalidPartitions, partitions)
	}
	n := len(brokers)
	if replicationFactor <= 0 || int(replicationFactor) > n {
		return nil, fmt.Errorf("%w: %d with %d usable brokers", ErrInvalidReplicationFactor, replicationFactor, n)
	}
	start %= n
	if start < 0 {
		start += n
	}
	out := make([][]int32, partitions)
	for p := range out {
		r := make([]int32, replicationFactor)
		for j := range r {
			r[j] = brokers[(start+p+j)%n]
		}
		out[p] = r
	}
	return out, nil
}

package raft

import (
	"cmp"
	"fmt"
	"slices"
)

// Replica placement for new partitions (CreateTopics, CreatePartitions,
// auto-created topics). It runs in the proposer, never in apply: the
// command carries the computed replica lists, so the FSM stays a pure
// function of the log. It is deterministic all the same (same brokers, same
// arguments, same answer), which keeps tests and retries reproducible.
//
// The goals, in Kafka's order of priority (KRaft's StripedReplicaPlacer):
//  1. each partition's replicas spread over as many racks as possible:
//     min(racks, replication factor) distinct racks;
//  2. leaders (first replicas) rotate over the racks, and within a rack
//     over its brokers, so leaders spread evenly when racks are equal in
//     size; followers rotate the same way, so replica counts even out too;
//  3. without racks this is plain round-robin, identical to the placement
//     Strom had before racks.
//
// Brokers without a rack form one rack of their own (the empty name), as
// in KRaft, which places mixed clusters without complaint; ZooKeeper-era
// Kafka refused them unless told to ignore racks. Racks of unequal size
// get more replicas per broker in the smaller racks: rack spread comes
// first, as in Kafka. Unlike KRaft, fenced brokers are never used (KRaft
// puts followers on fenced brokers as a last resort): a new replica on a
// broker that cannot fetch would start out of the ISR.

// PlaceReplicas assigns rf replicas to each of count partitions numbered
// from first, over the unfenced brokers, spread over racks as described
// above. start shifts the rotation (NewCreateTopic derives it from the
// topic ID so topics do not all start on the same broker); partition p
// sits at rotation position start+p, so CreatePartitions continues a
// topic's pattern by passing the first new index. The result is fresh.
// Errors: ErrInvalidPartitions for count <= 0, ErrInvalidReplicationFactor
// when rf < 1 or rf exceeds the unfenced brokers.
func PlaceReplicas(brokers []Broker, first, count int32, rf int16, start int) ([][]int32, error) {
	if count <= 0 {
		return nil, fmt.Errorf("%w: %d partitions", ErrInvalidPartitions, count)
	}
	racks := groupRacks(brokers)
	n := 0
	for _, r := range racks {
		n += len(r.ids)
	}
	if rf <= 0 || int(rf) > n {
		return nil, fmt.Errorf("%w: %d with %d usable brokers", ErrInvalidReplicationFactor, rf, n)
	}
	nr := len(racks)
	period := nr * rotationPeriod(racks)
	out := make([][]int32, count)
	for i := range out {
		pos := start + int(first) + i
		if pos < 0 { // only a negative start gets here
			pos = pos%period + period
		}
		lead, round := pos%nr, pos/nr
		reps := make([]int32, 0, rf)
		// Step j visits rack (lead+j) mod nr for the (j/nr)-th time in this
		// partition; its distance d from the leader's rack offsets the
		// broker picked there, so followers rotate like leaders. Visit t of
		// a rack takes the t-th next broker, distinct while t < its size.
		for j := 0; len(reps) < int(rf); j++ {
			r := racks[(lead+j)%nr]
			d, t := j%nr, j/nr
			if t >= len(r.ids) {
				continue
			}
			reps = append(reps, r.ids[(round+d+t)%len(r.ids)])
		}
		out[i] = reps
	}
	return out, nil
}

// rackGroup is one rack's unfenced brokers, sorted by id.
type rackGroup struct {
	name string
	ids  []int32
}

// groupRacks groups the unfenced brokers by rack, racks sorted by name
// (the rackless group, named "", first) and brokers by id; duplicate ids
// count once.
func groupRacks(brokers []Broker) []rackGroup {
	byRack := map[string][]int32{}
	for _, b := range brokers {
		if b.Fenced || slices.Contains(byRack[b.Rack], b.ID) {
			continue
		}
		byRack[b.Rack] = append(byRack[b.Rack], b.ID)
	}
	out := make([]rackGroup, 0, len(byRack))
	for name, ids := range byRack {
		slices.Sort(ids)
		out = append(out, rackGroup{name: name, ids: ids})
	}
	slices.SortFunc(out, func(a, b rackGroup) int { return cmp.Compare(a.name, b.name) })
	return out
}

// rotationPeriod is the least common multiple of the rack sizes: the
// placement of position pos equals that of pos + racks*period. Used only to
// bring a negative start into range; capped (at a multiple of no rack size,
// in pathological clusters) so it cannot overflow.
func rotationPeriod(racks []rackGroup) int {
	l := 1
	for _, r := range racks {
		a, b := l, len(r.ids)
		for b != 0 {
			a, b = b, a%b
		}
		l = l / a * len(r.ids)
		if l > 1<<20 {
			return 1 << 20
		}
	}
	return l
}

package broker

// Fetch from follower (KIP-392), both halves.
//
// Leader side: with replica.selector.class set to Kafka's
// RackAwareReplicaSelector (Config.ReplicaSelectorClass), a consumer Fetch
// (v11+, which carries rack_id) whose rack differs from the leader's is
// answered, partition by partition, with no records and
// preferred_read_replica = the in-sync replica in the client's rack that
// has the most of the log (highest log end offset, then the most recently
// caught up, then the lowest id), among those whose log holds the fetch
// offset (log start <= offset <= log end), as Kafka's ReplicaManager and
// RackAwareReplicaSelector choose it. A client in the leader's rack, in a
// rack without such a replica, or naming no rack stays on the leader.
// Fenced brokers are never chosen.
//
// Follower side: like Kafka, any replica serves consumer fetches of v11+
// whatever the selector (older fetches carry no client metadata and stay
// leader-only: NOT_LEADER_OR_FOLLOWER). A follower reads up to its own high
// watermark, which its replica fetcher takes from the leader's fetch
// answers capped by its durable log end (replica_fetcher.go), or up to its
// own last stable offset for read_committed: the follower appends the
// leader's batches unchanged, so its producer state and transaction index
// track open and aborted transactions exactly as the leader's do, and the
// LSO (first open transaction, capped by the high watermark) is computed
// the same way. An offset between the follower's high watermark and its
// log end gets an empty answer, as Kafka's log read does (the follower
// catches up); past its log end or before its log start,
// OFFSET_OUT_OF_RANGE, on which clients go back to the leader. The
// current leader epoch is checked against the follower's view of the
// partition (FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH). A broker that is
// not a replica answers NOT_LEADER_OR_FOLLOWER. ListOffsets stays
// leader-only, as in Kafka.

import (
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/raft"
)

// minFollowerReadVersion is the first Fetch version with client metadata
// (rack_id); Kafka lets only such consumer fetches read from followers.
const minFollowerReadVersion = 11

// lookupReadPartition finds the replica a fetch reads: the partition this
// broker leads, or, when mayFollow (a consumer fetch of v11+), a replica it
// follows. leader reports which.
func (b *Broker) lookupReadPartition(st *raft.State, topic string, index int32, mayFollow bool) (p *partition, leader bool, e *kerr.Error) {
	p, e = b.lookupPartition(st, topic, index)
	if e == nil || !mayFollow || e != kerr.NotLeaderForPartition {
		return p, e == nil, e
	}
	t := st.Topics[topic]
	if !slices.Contains(t.Partitions[index].Replicas, b.cfg.NodeID) {
		return nil, false, kerr.NotLeaderForPartition
	}
	p = b.parts.get(topic, index)
	if p == nil || p.topicID != t.ID {
		return nil, false, kerr.NotLeaderForPartition
	}
	return p, false, nil
}

// preferredReadReplica returns the replica a consumer in rack clientRack
// should fetch offset from instead of this leader, or -1 for the leader
// itself (see the file comment for the rules).
func (b *Broker) preferredReadReplica(st *raft.State, p *partition, clientRack string, offset int64) int32 {
	if b.cfg.ReplicaSelectorClass != RackAwareSelector || clientRack == "" || clientRack == b.cfg.Rack {
		return -1
	}
	now := time.Now()
	r := &p.repl
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.leader {
		return -1
	}
	best := int32(-1)
	var bestLEO int64
	var bestSince time.Duration
	for _, id := range r.isr {
		if id == r.self {
			continue
		}
		f := r.followers[id]
		br, ok := st.Brokers[id]
		if f == nil || !ok || br.Fenced || br.Rack != clientRack || f.leo < offset || f.logStart > offset {
			continue
		}
		since := now.Sub(f.caughtUp)
		if best < 0 || f.leo > bestLEO || f.leo == bestLEO && (since < bestSince || since == bestSince && id < best) {
			best, bestLEO, bestSince = id, f.leo, since
		}
	}
	return best
}

// consumerRack is the rack a consumer fetch names (v11+), or "".
func consumerRack(req *kmsg.FetchRequest) string {
	if req.Version < minFollowerReadVersion || fetchReplicaID(req) >= 0 {
		return ""
	}
	return req.Rack
}

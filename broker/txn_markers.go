package broker

// Transaction markers across brokers, Kafka's TransactionMarkerChannelManager
// in Strom's shape: the coordinator groups a completing transaction's
// partitions by their current leader (from the raft state), appends the
// markers of the partitions it leads itself, and sends one WriteTxnMarkers
// request to each other leader, all at once. Partitions that fail with a
// retriable error (NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION, a
// lost connection, a timeout, ...) or that have no leader right now are
// planned again against fresh state after a short backoff, until every
// marker is written or the context ends. A partition whose topic no longer
// exists needs no marker (Kafka drops it too). The receiving broker answers
// only after its marker is durable and replicated to the ISR (acks=all), so
// when sendMarkers returns nil every marker is.
//
// Markers are idempotent for readers: writing one again after a coordinator
// failover (the new coordinator finishes every transaction it finds
// prepared) closes nothing that is open, so at-least-once delivery is
// enough.

import (
	"context"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/broker/txn"
	"github.com/stromhq/strom/raft"
)

const (
	// markerRetryWindow bounds how long one completion retries its markers;
	// what is left stays prepared and the coordinator's tick tries again.
	markerRetryWindow = 30 * time.Second
	// markerRequestTimeout bounds one WriteTxnMarkers round trip, which
	// includes the receiver's replication wait.
	markerRequestTimeout = 30 * time.Second
	// markerBackoffMin and markerBackoffMax bound the wait before the
	// partitions that failed are planned again.
	markerBackoffMin = 20 * time.Millisecond
	markerBackoffMax = 500 * time.Millisecond
)

// markerPlan is where each of a transaction's markers goes now.
type markerPlan struct {
	// local are the partitions this broker leads.
	local []txn.TopicPartition
	// remote are the other leaders' partitions by broker id, and addrs their
	// listeners.
	remote map[int32][]txn.TopicPartition
	addrs  map[int32]string
	// waiting have no usable leader now (none elected, or the leader is
	// fenced or unknown): retried after a backoff.
	waiting []txn.TopicPartition
}

// planMarkers groups parts by their leader in st; self is this broker.
// Partitions of deleted topics (or beyond a topic's partition count) are
// left out: they need no marker.
func planMarkers(st *raft.State, self int32, parts []txn.TopicPartition) markerPlan {
	plan := markerPlan{remote: map[int32][]txn.TopicPartition{}, addrs: map[int32]string{}}
	for _, tp := range parts {
		t, ok := st.Topics[tp.Topic]
		if !ok || tp.Partition < 0 || int(tp.Partition) >= len(t.Partitions) {
			continue
		}
		leader := t.Partitions[tp.Partition].Leader
		if leader == self {
			plan.local = append(plan.local, tp)
			continue
		}
		br, ok := st.Brokers[leader]
		if leader < 0 || !ok || br.Fenced {
			plan.waiting = append(plan.waiting, tp)
			continue
		}
		plan.remote[leader] = append(plan.remote[leader], tp)
		plan.addrs[leader] = net.JoinHostPort(br.Host, strconv.Itoa(int(br.Port)))
	}
	return plan
}

// markerOutcome classifies a partition's error from writing its marker:
// done (written, or nothing left to write there) or retry. Kafka's
// coordinator treats these the same way, except that it gives up on a
// transaction on INVALID_PRODUCER_EPOCH or TRANSACTION_COORDINATOR_FENCED;
// here those mean a newer epoch or coordinator has superseded this marker,
// so the partition counts as done and the completion can be recorded.
func markerDone(e *kerr.Error) bool {
	switch e {
	case nil, kerr.InvalidProducerEpoch, kerr.TransactionCoordinatorFenced,
		kerr.UnsupportedForMessageFormat, kerr.UnsupportedVersion:
		return true
	}
	return false
}

// stillCoordinates reports whether this broker still leads id's
// __transaction_state partition in leader epoch coordEpoch: a coordinator
// that lost it (or lost and regained it) stops sending the markers, as
// Kafka's does on NOT_COORDINATOR or a new coordinator epoch; the new
// coordinator finishes the transaction from the log.
func stillCoordinates(st *raft.State, self int32, id string, coordEpoch int32) bool {
	t, ok := st.Topics[txnTopic]
	if !ok || len(t.Partitions) == 0 {
		return false
	}
	p := t.Partitions[groupPartition(id, len(t.Partitions))]
	return p.Leader == self && p.LeaderEpoch == coordEpoch
}

// sendMarkers writes cp's markers to every partition's current leader and
// returns nil once all are written and durable, the last error when ctx
// ended first (the transaction then stays prepared), or NOT_COORDINATOR
// when this broker stopped coordinating the transaction meanwhile.
func (c *txnCoordinator) sendMarkers(ctx context.Context, cp completion) *kerr.Error {
	pending := cp.parts
	backoff := markerBackoffMin
	var last *kerr.Error
	for {
		st := c.b.node.State()
		if !stillCoordinates(st, c.b.cfg.NodeID, cp.id, cp.coordEpoch) {
			c.b.log.Info("no longer the transaction coordinator; markers left to the new one", "transactional_id", cp.id)
			return kerr.NotCoordinator
		}
		plan := planMarkers(st, c.b.cfg.NodeID, pending)
		var mu sync.Mutex
		var retry []txn.TopicPartition
		note := func(tp txn.TopicPartition, e *kerr.Error) {
			if markerDone(e) {
				return
			}
			mu.Lock()
			retry = append(retry, tp)
			last = e
			mu.Unlock()
		}
		var wg sync.WaitGroup
		for _, tp := range plan.local {
			wg.Add(1)
			go func() {
				defer wg.Done()
				note(tp, c.b.writeMarker(ctx, tp.Topic, tp.Partition, cp.pid, cp.epoch, cp.commit, cp.coordEpoch))
			}()
		}
		for id, tps := range plan.remote {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs := c.writeRemoteMarkers(ctx, plan.addrs[id], cp, tps)
				for i, tp := range tps {
					note(tp, errs[i])
				}
			}()
		}
		wg.Wait()
		if len(plan.waiting) > 0 {
			last = kerr.NotLeaderForPartition
		}
		retry = append(retry, plan.waiting...)
		if len(retry) == 0 {
			return nil
		}
		pending = retry
		select {
		case <-ctx.Done():
			c.b.log.Warn("transaction markers not written yet", "transactional_id", cp.id, "partitions", len(pending), "err", last)
			return last
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, markerBackoffMax)
	}
}

// writeRemoteMarkers sends one WriteTxnMarkers request for tps to the
// leader at addr and returns each partition's error; a failed round trip
// fails them all with NETWORK_EXCEPTION (retried).
func (c *txnCoordinator) writeRemoteMarkers(ctx context.Context, addr string, cp completion, tps []txn.TopicPartition) []*kerr.Error {
	errs := make([]*kerr.Error, len(tps))
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	req.Version = 1
	mk := kmsg.NewWriteTxnMarkersRequestMarker()
	mk.ProducerID, mk.ProducerEpoch, mk.Committed, mk.CoordinatorEpoch = cp.pid, cp.epoch, cp.commit, cp.coordEpoch
	for _, tp := range tps {
		if n := len(mk.Topics); n == 0 || mk.Topics[n-1].Topic != tp.Topic {
			t := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
			t.Topic = tp.Topic
			mk.Topics = append(mk.Topics, t)
		}
		t := &mk.Topics[len(mk.Topics)-1]
		t.Partitions = append(t.Partitions, tp.Partition)
	}
	req.Markers = append(req.Markers, mk)
	resp := kmsg.NewPtrWriteTxnMarkersResponse()
	if err := c.peers.do(ctx, addr, req, resp, markerRequestTimeout); err != nil {
		c.b.log.Info("send transaction markers", "transactional_id", cp.id, "leader", addr, "err", err)
		for i := range errs {
			errs[i] = kerr.NetworkException
		}
		return errs
	}
	got := map[txn.TopicPartition]int16{}
	for _, m := range resp.Markers {
		if m.ProducerID != cp.pid {
			continue
		}
		for _, t := range m.Topics {
			for _, p := range t.Partitions {
				got[txn.TopicPartition{Topic: t.Topic, Partition: p.Partition}] = p.ErrorCode
			}
		}
	}
	for i, tp := range tps {
		code, ok := got[tp]
		switch {
		case !ok:
			errs[i] = kerr.NetworkException // missing from the answer: send again
		case code != 0:
			errs[i] = kerrFor(code)
		}
	}
	return errs
}

package broker

// InitProducerId, versions 0-5.
//
// Idempotent producers (no transactional id) get a fresh producer id with
// epoch 0 on every call, as Kafka does (a v3+ request naming its current id
// and epoch also gets a new id: KIP-360's epoch bump applies to transactional
// producers only). Ids come from blocks of 1000 allocated through raft
// (AllocateProducerIDs, a compare-and-set on the next free id), so they are
// unique across brokers and restarts; a restart abandons the rest of its
// block, as Kafka's does.
//
// Requests with a transactional id are served by the transaction
// coordinator (transactions.go).

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/raft"
)

func init() { register(&kmsg.InitProducerIDRequest{}, 0, 5, (*Broker).handleInitProducerID) }

// producerIDBlockSize is how many ids one raft allocation hands out.
const producerIDBlockSize = 1000

// producerIDs hands out ids from the block this broker owns; mu guards next
// and end. Invariant: next <= end; the block is [next, end).
type producerIDs struct {
	mu        sync.Mutex
	next, end int64
}

// nextProducerID returns an unused producer id, allocating a new block
// through raft when the current one is used up.
func (b *Broker) nextProducerID(ctx context.Context) (int64, error) {
	b.pids.mu.Lock()
	defer b.pids.mu.Unlock()
	if b.pids.next < b.pids.end {
		id := b.pids.next
		b.pids.next++
		return id, nil
	}
	for attempt := 0; attempt < 5; attempt++ {
		start := b.node.State().NextProducerID
		// Not b.apply: an allocation changes no partition, so it needs no
		// reconcile, and reconcile takes partition locks. The transaction
		// coordinator calls this holding its own lock, while produce holds
		// a partition's lock when it calls into the coordinator (lock order
		// partition, then coordinator): reconciling here deadlocked.
		actx, cancel := context.WithTimeout(ctx, metaTimeout)
		res, err := b.node.Apply(actx, raft.AllocateProducerIDs{BrokerID: b.cfg.NodeID, Start: start, Count: producerIDBlockSize})
		cancel()
		if errors.Is(err, raft.ErrStaleProducerIDBlock) {
			continue // another broker won the race; retry at the new start
		}
		if err != nil {
			return 0, fmt.Errorf("allocate producer id block: %w", err)
		}
		blk := res.ProducerIDs
		b.pids.next, b.pids.end = blk.Start+1, blk.Start+int64(blk.Count)
		return blk.Start, nil
	}
	return 0, fmt.Errorf("allocate producer id block: %w", raft.ErrStaleProducerIDBlock)
}

func (b *Broker) handleInitProducerID(rq *request, req *kmsg.InitProducerIDRequest) reply {
	if req.TransactionalID != nil {
		return b.handleInitTransactional(rq, req)
	}
	return b.handleInitIdempotent(rq, req)
}

// handleInitIdempotent answers an InitProducerId without a transactional id.
func (b *Broker) handleInitIdempotent(rq *request, req *kmsg.InitProducerIDRequest) reply {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	// KIP-679: IDEMPOTENT_WRITE on the cluster, or WRITE on some topic (an
	// empty transactional id was checked by handleInitTransactional).
	if b.authz.enabled && req.TransactionalID == nil && !b.authorizedCluster(rq, opIdempotentWrite) &&
		!b.authz.authorizeAny(b.acls(), rq.c.principal, rq.c.host, opWrite, resTopic) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return now(resp)
	}
	id, err := b.nextProducerID(context.Background())
	if err != nil {
		b.log.Warn("init producer id", "err", err)
		resp.ErrorCode = metaErr(err).Code
		if errors.Is(err, raft.ErrNotLeader) {
			resp.ErrorCode = kerr.NotCoordinator.Code
		}
		return now(resp)
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return now(resp)
}

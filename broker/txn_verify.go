package broker

// Transaction verification against a transaction coordinator on another
// broker (KIP-890): the leader of a data partition (for a transactional
// Produce) and the group coordinator (for a TxnOffsetCommit) ask the
// coordinator of the producer's transactional id, found as FindCoordinator
// finds it (the leader of the id's __transaction_state partition), with the
// broker form of AddPartitionsToTxn (v4+, one transaction per request):
// VerifyOnly=true to check the partition is in the ongoing transaction
// (transaction version 1), VerifyOnly=false to add it (transaction version
// 2: Produce v12+, TxnOffsetCommit v5+). When this broker is the
// coordinator the check stays a local call (txnCoordinator.verifyProduce).
//
// A verification guard closes the race Kafka's VerificationStateEntry
// closes: between the coordinator's answer and the append, the transaction
// may have ended and its marker been written here, and a batch appended
// after that marker would open a transaction no marker ever ends. So the
// guard is registered on the partition (under p.mu) before the request is
// sent, every marker appended to the partition for the producer removes it,
// and the append (under p.mu again) goes ahead only if the guard it
// registered is still there or the producer's transaction is already open
// in the log at the same epoch (then no verification is needed at all, as
// in Kafka).

import (
	"context"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/raft"
)

// txnVerifyTimeout bounds one verification round trip to a coordinator.
const txnVerifyTimeout = 10 * time.Second

// verifyGuard is a partition's pending verification for one producer.
type verifyGuard struct {
	epoch int16
	token uint64
}

// guardTokens makes verification guard tokens unique in the process, so a
// guard left from an earlier leadership can never pass for a new one.
var guardTokens atomic.Uint64

// beginVerify returns whether pid's transaction is already open in p's log
// at epoch (no verification needed) and, if not, the guard token the append
// must find again. A guard already registered for the same epoch is reused,
// so pipelined requests of one producer do not invalidate each other.
// Caller holds p.mu.
func (p *partition) beginVerify(pid int64, epoch int16) (ongoing bool, token uint64) {
	if e, ok := p.log.Producer(pid); ok && e.CurrentTxnFirstOffset >= 0 && e.Epoch == epoch {
		return true, 0
	}
	if g, ok := p.verifying[pid]; ok && g.epoch == epoch {
		return false, g.token
	}
	if p.verifying == nil {
		p.verifying = map[int64]verifyGuard{}
	}
	g := verifyGuard{epoch: epoch, token: guardTokens.Add(1)}
	p.verifying[pid] = g
	return false, g.token
}

// verified reports whether a batch of pid at epoch, verified with token,
// may be appended now: its transaction is open in the log at that epoch,
// or no marker for pid was appended since the guard was registered.
// Caller holds p.mu.
func (p *partition) verified(pid int64, epoch int16, token uint64) bool {
	if e, ok := p.log.Producer(pid); ok && e.CurrentTxnFirstOffset >= 0 && e.Epoch == epoch {
		return true
	}
	g, ok := p.verifying[pid]
	return ok && token != 0 && g.token == token && g.epoch == epoch
}

// endVerify drops pid's guard if it is still token's (the append opened the
// transaction in the log, or the verification failed). Caller holds p.mu.
func (p *partition) endVerify(pid int64, token uint64) {
	if g, ok := p.verifying[pid]; ok && g.token == token {
		delete(p.verifying, pid)
	}
}

// txnCoordinatorOf returns the broker coordinating transactional id and its
// address ("" when it is this broker), or COORDINATOR_NOT_AVAILABLE when
// there is none now, as Kafka's AddPartitionsToTxnManager decides it.
func (b *Broker) txnCoordinatorOf(st *raft.State, id string) (int32, string, *kerr.Error) {
	t, ok := st.Topics[txnTopic]
	if !ok || len(t.Partitions) == 0 {
		// No transaction state topic: no transaction was ever started.
		return -1, "", kerr.CoordinatorNotAvailable
	}
	leader := t.Partitions[groupPartition(id, len(t.Partitions))].Leader
	if leader == b.cfg.NodeID {
		return leader, "", nil
	}
	br, ok := st.Brokers[leader]
	if leader < 0 || !ok || br.Fenced {
		return -1, "", kerr.CoordinatorNotAvailable
	}
	return leader, net.JoinHostPort(br.Host, strconv.Itoa(int(br.Port))), nil
}

// verifyRemote asks the coordinator at addr whether tps are in the ongoing
// transaction of (pid, epoch) of id, or (add) adds them. It returns the
// coordinator's error per partition (nil entries: verified), with transport
// failures as NETWORK_EXCEPTION; callers translate them for their client
// (produceVerifyErr, offsetVerifyErr).
func (c *txnCoordinator) verifyRemote(ctx context.Context, addr, id string, pid int64, epoch int16, tps []topicPartition, add bool) []*kerr.Error {
	errs := make([]*kerr.Error, len(tps))
	setAll := func(e *kerr.Error) []*kerr.Error {
		for i := range errs {
			errs[i] = e
		}
		return errs
	}
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.Version = 5
	tr := kmsg.NewAddPartitionsToTxnRequestTransaction()
	tr.TransactionalID, tr.ProducerID, tr.ProducerEpoch, tr.VerifyOnly = id, pid, epoch, !add
	for _, tp := range tps {
		if n := len(tr.Topics); n == 0 || tr.Topics[n-1].Topic != tp.topic {
			rt := kmsg.NewAddPartitionsToTxnRequestTransactionTopic()
			rt.Topic = tp.topic
			tr.Topics = append(tr.Topics, rt)
		}
		rt := &tr.Topics[len(tr.Topics)-1]
		rt.Partitions = append(rt.Partitions, tp.partition)
	}
	req.Transactions = append(req.Transactions, tr)
	resp := kmsg.NewPtrAddPartitionsToTxnResponse()
	ctx, cancel := context.WithTimeout(ctx, txnVerifyTimeout)
	defer cancel()
	if err := c.peers.do(ctx, addr, req, resp, txnVerifyTimeout); err != nil {
		c.b.log.Warn("verify transaction with its coordinator", "transactional_id", id, "coordinator", addr, "err", err)
		return setAll(kerr.NetworkException)
	}
	if resp.ErrorCode != 0 {
		e := kerrFor(resp.ErrorCode)
		if e == kerr.ClusterAuthorizationFailed {
			e = kerr.InvalidTxnState
		}
		return setAll(e)
	}
	got := map[topicPartition]int16{}
	for _, rt := range resp.Transactions {
		if rt.TransactionalID != id {
			continue
		}
		for _, t := range rt.Topics {
			for _, p := range t.Partitions {
				got[topicPartition{t.Topic, p.Partition}] = p.ErrorCode
			}
		}
	}
	for i, tp := range tps {
		code, ok := got[tp]
		switch {
		case !ok:
			errs[i] = kerr.NetworkException // a malformed answer: retriable
		case code != 0:
			errs[i] = kerrFor(code)
		}
	}
	return errs
}

// produceVerifyErr translates a coordinator's verification error into the
// error a producer gets for its batch, as Kafka's leader does: fencing is
// INVALID_PRODUCER_EPOCH, a partition not in the transaction
// INVALID_TXN_STATE (TRANSACTION_ABORTABLE from Produce v12 on), and the
// coordinator's retriable errors NOT_ENOUGH_REPLICAS, which every producer
// retries without a metadata refresh (CONCURRENT_TRANSACTIONS stays itself
// for transaction version 2 clients, which know it).
func produceVerifyErr(e *kerr.Error, produceVersion int16) (*kerr.Error, string) {
	switch e {
	case nil:
		return nil, ""
	case kerr.ProducerFenced:
		return kerr.InvalidProducerEpoch, "producer fenced by its transaction coordinator"
	case kerr.TransactionAbortable:
		if produceVersion >= 12 {
			return e, "partition was not added to the transaction"
		}
		return kerr.InvalidTxnState, "partition was not added to the transaction"
	case kerr.InvalidTxnState:
		return e, "partition was not added to the transaction"
	case kerr.NetworkException, kerr.CoordinatorLoadInProgress, kerr.CoordinatorNotAvailable, kerr.NotCoordinator:
		return kerr.NotEnoughReplicas, "unable to verify the partition has been added to the transaction: " + e.Message
	case kerr.ConcurrentTransactions:
		if produceVersion >= 12 {
			return e, ""
		}
		return kerr.NotEnoughReplicas, "unable to verify the partition has been added to the transaction: " + e.Message
	}
	return e, ""
}

// offsetVerifyErr translates a coordinator's verification error into the
// error a TxnOffsetCommit gets: the coordinator's retriable errors become
// COORDINATOR_NOT_AVAILABLE (the client looks the group coordinator up
// again and retries), a partition not in the transaction INVALID_TXN_STATE
// before version 5.
func offsetVerifyErr(e *kerr.Error, version int16) *kerr.Error {
	switch e {
	case kerr.NetworkException, kerr.CoordinatorLoadInProgress, kerr.NotCoordinator:
		return kerr.CoordinatorNotAvailable
	case kerr.TransactionAbortable:
		if version < 5 {
			return kerr.InvalidTxnState
		}
	}
	return e
}

// kerrFor is the Kafka error of a non-zero code from a peer's answer
// (UNKNOWN_SERVER_ERROR for a code this build does not know).
func kerrFor(code int16) *kerr.Error {
	if e, ok := kerr.ErrorForCode(code).(*kerr.Error); ok && e != nil {
		return e
	}
	return kerr.UnknownServerError
}

// topicPartition names one partition.
type topicPartition struct {
	topic     string
	partition int32
}

// peerPool keeps idle connections to other brokers for the transaction
// coordinator's markers and the leaders' verifications. A connection is
// owned by one request at a time (get to put); the pool owns the idle ones.
// Every connection is dialed under the broker's context, so Close's cancel
// closes them all.
type peerPool struct {
	b *Broker
	// mu guards idle.
	mu   sync.Mutex
	idle map[string][]*peerConn
}

// peerPoolIdle bounds the idle connections kept per broker.
const peerPoolIdle = 4

// do sends req to the broker at addr over an idle or new connection and
// decodes its answer into resp. A connection that failed is closed, not
// returned to the pool.
func (pp *peerPool) do(ctx context.Context, addr string, req kmsg.Request, resp kmsg.Response, timeout time.Duration) error {
	pp.mu.Lock()
	var pc *peerConn
	if l := pp.idle[addr]; len(l) > 0 {
		pc = l[len(l)-1]
		pp.idle[addr] = l[:len(l)-1]
	}
	pp.mu.Unlock()
	if pc == nil {
		var err error
		pc, err = pp.b.dialPeer(pp.b.ctx, addr, "strom-txn-"+strconv.Itoa(int(pp.b.cfg.NodeID)))
		if err != nil {
			return err
		}
	}
	if err := pc.do(ctx, req, resp, timeout); err != nil {
		pc.close()
		return err
	}
	pp.mu.Lock()
	if pp.idle == nil {
		pp.idle = map[string][]*peerConn{}
	}
	if len(pp.idle[addr]) < peerPoolIdle && pp.b.ctx.Err() == nil {
		pp.idle[addr] = append(pp.idle[addr], pc)
		pc = nil
	}
	pp.mu.Unlock()
	if pc != nil {
		pc.close()
	}
	return nil
}

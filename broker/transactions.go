package broker

// Transactions: InitProducerId 0-5 (with a transactional id; idempotent
// producers are in producer_id.go), AddPartitionsToTxn 0-5 (v4+ batched
// form with verify_only, as brokers send it), AddOffsetsToTxn 0-4,
// TxnOffsetCommit 0-5, EndTxn 0-5, WriteTxnMarkers 0-1,
// DescribeTransactions 0, ListTransactions 0-1.
//
// Both transaction versions are served, and ApiVersions finalizes the
// transaction.version feature at 2 as Kafka 4 does. Version 1 clients add
// partitions explicitly and keep their epoch across transactions. Version 2
// clients (KIP-890 part 2) send Produce v12+, which adds the partition to
// the transaction itself, TxnOffsetCommit v5+, which adds the offsets
// partition, and EndTxn v5+, after which the epoch is bumped (the markers
// carry the new epoch; the answer gives it, or a new producer id when the
// epoch ran out); a v5 abort without an open transaction only bumps.
// Semantics follow Kafka's transaction coordinator otherwise:
// PRODUCER_FENCED for a stale epoch (INVALID_PRODUCER_EPOCH for the request
// versions before KIP-588), INVALID_PRODUCER_ID_MAPPING for a foreign
// producer id, CONCURRENT_TRANSACTIONS while a transaction completes,
// INVALID_TRANSACTION_TIMEOUT above transaction.max.timeout.ms, and an
// InitProducerId that finds an open transaction aborts it (epoch bump) and
// answers CONCURRENT_TRANSACTIONS so the producer retries.
//
// Across brokers: the coordinator appends the markers of the partitions it
// leads itself and sends WriteTxnMarkers to every other partition's leader,
// retrying with fresh metadata until each marker is written
// (txn_markers.go); the WriteTxnMarkers handler answers Kafka's
// per-partition errors (NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION)
// and routes __consumer_offsets markers to the group coordinator. Partition
// leaders and group coordinators verify transactional writes with a remote
// coordinator through the broker form of AddPartitionsToTxn
// (txn_verify.go), which this file also serves (VerifyOnly answers
// Kafka's INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED,
// CONCURRENT_TRANSACTIONS and, from v5, TRANSACTION_ABORTABLE).
//
// Differences from Kafka: EndTxn answers after every marker is written and
// durable (Kafka answers once the prepare record is written and sends the
// markers asynchronously), so a client never sees CONCURRENT_TRANSACTIONS
// from its own commit; if markers are still missing after
// markerRetryWindow it answers anyway (the outcome is durable) and the
// coordinator's tick keeps retrying. A partition leader refuses a marker
// older than the producer's epoch in the partition (INVALID_PRODUCER_EPOCH)
// and one from an older coordinator epoch than the producer's last marker
// in the partition (TRANSACTION_COORDINATOR_FENCED), as Kafka does. The
// coordinator epoch is part of the log's producer state (snapshots and log
// replay, and followers apply the same markers), as in Kafka, so the check
// holds across restarts and leader changes.
//
// ACLs as in Kafka: InitProducerId, AddPartitionsToTxn (client form),
// AddOffsetsToTxn, TxnOffsetCommit and EndTxn need WRITE on the
// transactional id (TRANSACTIONAL_ID_AUTHORIZATION_FAILED); adding
// partitions also WRITE on each topic (denied ones TOPIC_AUTHORIZATION_FAILED,
// the rest OPERATION_NOT_ATTEMPTED); offsets READ on the group
// (GROUP_AUTHORIZATION_FAILED) and, for TxnOffsetCommit, READ on each topic.
// The broker-to-broker AddPartitionsToTxn (v4+) and WriteTxnMarkers need
// CLUSTER_ACTION on the cluster. DescribeTransactions needs DESCRIBE on
// each id and leaves out topics the client may not describe;
// ListTransactions lists only ids the client may describe.

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/broker/group"
	"github.com/stromhq/strom/broker/txn"
)

func init() {
	register(&kmsg.AddPartitionsToTxnRequest{}, 0, 5, (*Broker).handleAddPartitionsToTxn)
	register(&kmsg.AddOffsetsToTxnRequest{}, 0, 4, (*Broker).handleAddOffsetsToTxn)
	register(&kmsg.TxnOffsetCommitRequest{}, 0, 5, (*Broker).handleTxnOffsetCommit)
	register(&kmsg.EndTxnRequest{}, 0, 5, (*Broker).handleEndTxn)
	register(&kmsg.WriteTxnMarkersRequest{}, 0, 1, (*Broker).handleWriteTxnMarkers)
	register(&kmsg.DescribeTransactionsRequest{}, 0, 0, (*Broker).handleDescribeTransactions)
	register(&kmsg.ListTransactionsRequest{}, 0, 1, (*Broker).handleListTransactions)
}

// fenced maps PRODUCER_FENCED to INVALID_PRODUCER_EPOCH for request
// versions older than fencedSince (KIP-588).
func fenced(e *kerr.Error, version, fencedSince int16) *kerr.Error {
	if e == kerr.ProducerFenced && version < fencedSince {
		return kerr.InvalidProducerEpoch
	}
	return e
}

// lookupTxn returns the metadata of id. c.mu must be held.
func (c *txnCoordinator) lookupTxn(id string) (*txn.Metadata, *kerr.Error) {
	if id == "" {
		return nil, kerr.InvalidRequest
	}
	if _, e := c.partitionOf(id); e != nil {
		return nil, e
	}
	m := c.txns[id]
	if m == nil {
		return nil, kerr.InvalidProducerIDMapping
	}
	return m, nil
}

// persistedErr waits for a transaction record to be durable and returns
// the first error.
func persistedErr(ctx context.Context, w internalWrite, err error) *kerr.Error {
	if err == nil {
		err = w.durable(ctx)
	}
	if err != nil {
		return kerr.CoordinatorNotAvailable
	}
	return nil
}

func (b *Broker) handleInitTransactional(rq *request, req *kmsg.InitProducerIDRequest) reply {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	fail := func(e *kerr.Error) reply {
		resp.ErrorCode = fenced(e, req.Version, 4).Code
		return now(resp)
	}
	id := *req.TransactionalID
	// As Kafka, a non-null id (even empty) needs WRITE on it.
	if !b.authorized(rq, opWrite, resTxnID, id) {
		return fail(kerr.TransactionalIDAuthorizationFailed)
	}
	if id == "" {
		return b.handleInitIdempotent(rq, req)
	}
	if req.TransactionTimeoutMillis <= 0 || int64(req.TransactionTimeoutMillis) > b.cfg.TransactionMaxTimeout.Milliseconds() {
		return fail(kerr.InvalidTransactionTimeout)
	}
	c := b.txns
	t := time.Now()
	c.mu.Lock()
	if _, e := c.partitionOf(id); e != nil {
		c.mu.Unlock()
		return fail(e)
	}
	if c.inflight[id] {
		c.mu.Unlock()
		return fail(kerr.ConcurrentTransactions)
	}
	m := c.txns[id]
	if m == nil {
		pid, err := b.nextProducerID(rq.c.ctx)
		if err != nil {
			c.mu.Unlock()
			b.log.Warn("init producer id", "err", err)
			return fail(kerr.CoordinatorNotAvailable)
		}
		m = txn.New(id, pid, req.TransactionTimeoutMillis, t.UnixMilli())
		c.txns[id] = m
		c.byPID[pid] = m
	}
	reqPID, reqEpoch := int64(-1), int16(-1)
	if req.Version >= 3 {
		reqPID, reqEpoch = req.ProducerID, req.ProducerEpoch
	}
	res := m.InitProducerID(reqPID, reqEpoch, req.TransactionTimeoutMillis, t.UnixMilli())
	if res.NeedNewID {
		pid, err := b.nextProducerID(rq.c.ctx)
		if err != nil {
			c.mu.Unlock()
			return fail(kerr.CoordinatorNotAvailable)
		}
		delete(c.byPID, m.ProducerID)
		m.Rotate(pid)
		c.byPID[pid] = m
	}
	if res.Err != nil && !res.Abort {
		c.mu.Unlock()
		return fail(res.Err)
	}
	w, err := c.persist(m, t)
	var cp completion
	if res.Abort {
		cp = c.prepared(m)
	}
	pid, epoch := m.ProducerID, m.Epoch
	c.mu.Unlock()
	return reply{wait: func(ctx context.Context) kmsg.Response {
		if e := persistedErr(ctx, w, err); e != nil {
			if res.Abort {
				c.mu.Lock()
				delete(c.inflight, id)
				c.mu.Unlock()
			}
			resp.ErrorCode = e.Code
			return resp
		}
		if res.Abort {
			_ = c.complete(ctx, cp)
			resp.ErrorCode = kerr.ConcurrentTransactions.Code
			return resp
		}
		resp.ProducerID, resp.ProducerEpoch = pid, epoch
		return resp
	}}
}

// addPartitionsMode says what addPartitions does.
type addPartitionsMode int8

const (
	// addExplicit is a client's AddPartitionsToTxn or AddOffsetsToTxn.
	addExplicit addPartitionsMode = iota
	// addImplicit is an add made on behalf of a transaction version 2
	// client (Produce v12+, TxnOffsetCommit v5+), here or by a partition
	// leader or group coordinator (broker form, VerifyOnly=false): it
	// marks the transactional id as using version 2.
	addImplicit
	// addVerifyOnly checks the partitions are in the transaction.
	addVerifyOnly
)

// addPartitions adds partitions to id's transaction (or, verifyOnly,
// checks they are in it) and returns the error per partition.
func (b *Broker) addPartitions(ctx context.Context, id string, pid int64, epoch int16, tps []txn.TopicPartition, mode addPartitionsMode) ([]*kerr.Error, func(context.Context) *kerr.Error) {
	verifyOnly := mode == addVerifyOnly
	errs := make([]*kerr.Error, len(tps))
	setAll := func(e *kerr.Error) {
		for i := range errs {
			errs[i] = e
		}
	}
	st := b.node.State()
	bad := false
	for i, tp := range tps {
		if !topicHas(st, tp.Topic, tp.Partition) {
			errs[i], bad = kerr.UnknownTopicOrPartition, true
		}
	}
	if bad {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = kerr.OperationNotAttempted
			}
		}
		return errs, nil
	}
	c := b.txns
	t := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	m, e := c.lookupTxn(id)
	if e == nil && c.inflight[id] && !verifyOnly {
		e = kerr.ConcurrentTransactions
	}
	if e != nil {
		setAll(e)
		return errs, nil
	}
	if verifyOnly {
		// Kafka's handleVerifyPartitionsInTransaction: the producer and
		// its epoch first, then a completing transaction, then each
		// partition (TRANSACTION_ABORTABLE when not in it).
		switch {
		case m.ProducerID != pid:
			setAll(kerr.InvalidProducerIDMapping)
		case m.Epoch != epoch:
			setAll(kerr.ProducerFenced)
		case m.State == txn.PrepareCommit || m.State == txn.PrepareAbort:
			setAll(kerr.ConcurrentTransactions)
		default:
			for i, tp := range tps {
				if m.State != txn.Ongoing || !m.Has(tp) {
					errs[i] = kerr.TransactionAbortable
				}
			}
		}
		return errs, nil
	}
	if e := m.AddPartitions(pid, epoch, tps, t.UnixMilli()); e != nil {
		setAll(e)
		return errs, nil
	}
	if mode == addImplicit {
		m.TV2 = true
	}
	w, err := c.persist(m, t)
	return errs, func(ctx context.Context) *kerr.Error { return persistedErr(ctx, w, err) }
}

func (b *Broker) handleAddPartitionsToTxn(rq *request, req *kmsg.AddPartitionsToTxnRequest) reply {
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	type one struct {
		tps  []txn.TopicPartition
		errs []*kerr.Error
		wait func(context.Context) *kerr.Error
	}
	collect := func(topics []kmsg.AddPartitionsToTxnRequestTopic) []txn.TopicPartition {
		var tps []txn.TopicPartition
		for _, t := range topics {
			for _, p := range t.Partitions {
				tps = append(tps, txn.TopicPartition{Topic: t.Topic, Partition: p})
			}
		}
		return tps
	}
	if req.Version < 4 {
		var o one
		o.tps = collect(req.Topics)
		if denied := b.authorizeAddPartitions(rq, req.TransactionalID, o.tps); denied != nil {
			o.errs = denied
		} else {
			o.errs, o.wait = b.addPartitions(rq.c.ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, o.tps, addExplicit)
		}
		return reply{wait: func(ctx context.Context) kmsg.Response {
			var we *kerr.Error
			if o.wait != nil {
				we = o.wait(ctx)
			}
			for i, tp := range o.tps {
				e := o.errs[i]
				if e == nil {
					e = we
				}
				code := int16(0)
				if e != nil {
					code = fenced(e, req.Version, 2).Code
				}
				if n := len(resp.Topics); n == 0 || resp.Topics[n-1].Topic != tp.Topic {
					rt := kmsg.NewAddPartitionsToTxnResponseTopic()
					rt.Topic = tp.Topic
					resp.Topics = append(resp.Topics, rt)
				}
				rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
				rp.Partition, rp.ErrorCode = tp.Partition, code
				rt := &resp.Topics[len(resp.Topics)-1]
				rt.Partitions = append(rt.Partitions, rp)
			}
			return resp
		}}
	}
	if !b.authorizedCluster(rq, opClusterAction) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return now(resp)
	}
	all := make([]one, len(req.Transactions))
	for i, tr := range req.Transactions {
		var topics []kmsg.AddPartitionsToTxnRequestTopic
		for _, t := range tr.Topics {
			rt := kmsg.NewAddPartitionsToTxnRequestTopic()
			rt.Topic, rt.Partitions = t.Topic, t.Partitions
			topics = append(topics, rt)
		}
		all[i].tps = collect(topics)
		// The v4+ form comes from brokers: VerifyOnly=false is a leader's
		// add for a transaction version 2 producer.
		mode := addImplicit
		if tr.VerifyOnly {
			mode = addVerifyOnly
		}
		all[i].errs, all[i].wait = b.addPartitions(rq.c.ctx, tr.TransactionalID, tr.ProducerID, tr.ProducerEpoch, all[i].tps, mode)
	}
	return reply{wait: func(ctx context.Context) kmsg.Response {
		for i, tr := range req.Transactions {
			o := all[i]
			var we *kerr.Error
			if o.wait != nil {
				we = o.wait(ctx)
			}
			rt := kmsg.NewAddPartitionsToTxnResponseTransaction()
			rt.TransactionalID = tr.TransactionalID
			for j, tp := range o.tps {
				e := o.errs[j]
				if e == nil {
					e = we
				}
				if n := len(rt.Topics); n == 0 || rt.Topics[n-1].Topic != tp.Topic {
					t := kmsg.NewAddPartitionsToTxnResponseTransactionTopic()
					t.Topic = tp.Topic
					rt.Topics = append(rt.Topics, t)
				}
				p := kmsg.NewAddPartitionsToTxnResponseTransactionTopicPartition()
				p.Partition = tp.Partition
				if e == kerr.TransactionAbortable && req.Version < 5 {
					// TRANSACTION_ABORTABLE came with v5 (KIP-890).
					e = kerr.InvalidTxnState
				}
				if e != nil {
					p.ErrorCode = e.Code
				}
				t := &rt.Topics[len(rt.Topics)-1]
				t.Partitions = append(t.Partitions, p)
			}
			resp.Transactions = append(resp.Transactions, rt)
		}
		return resp
	}}
}

// authorizeAddPartitions applies Kafka's checks to a client's
// AddPartitionsToTxn: nil when allowed, else one error per partition
// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED for all, or
// TOPIC_AUTHORIZATION_FAILED for denied topics and OPERATION_NOT_ATTEMPTED
// for the others, which are then not added).
func (b *Broker) authorizeAddPartitions(rq *request, id string, tps []txn.TopicPartition) []*kerr.Error {
	if !b.authz.enabled {
		return nil
	}
	errs := make([]*kerr.Error, len(tps))
	if !b.authorized(rq, opWrite, resTxnID, id) {
		for i := range errs {
			errs[i] = kerr.TransactionalIDAuthorizationFailed
		}
		return errs
	}
	anyDenied := false
	for i, tp := range tps {
		if !b.authorized(rq, opWrite, resTopic, tp.Topic) {
			errs[i] = kerr.TopicAuthorizationFailed
			anyDenied = true
		}
	}
	if !anyDenied {
		return nil
	}
	for i := range errs {
		if errs[i] == nil {
			errs[i] = kerr.OperationNotAttempted
		}
	}
	return errs
}

func (b *Broker) handleAddOffsetsToTxn(rq *request, req *kmsg.AddOffsetsToTxnRequest) reply {
	resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	switch {
	case !b.authorized(rq, opWrite, resTxnID, req.TransactionalID):
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return now(resp)
	case !b.authorized(rq, opRead, resGroup, req.Group):
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return now(resp)
	}
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return now(resp)
	}
	t, e := b.ensureOffsetsTopic(rq.c.ctx)
	if e != nil {
		resp.ErrorCode = e.Code
		return now(resp)
	}
	tp := txn.TopicPartition{Topic: offsetsTopic, Partition: groupPartition(req.Group, len(t.Partitions))}
	errs, wait := b.addPartitions(rq.c.ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, []txn.TopicPartition{tp}, addExplicit)
	return reply{wait: func(ctx context.Context) kmsg.Response {
		e := errs[0]
		if e == nil && wait != nil {
			e = wait(ctx)
		}
		if e != nil {
			resp.ErrorCode = fenced(e, req.Version, 2).Code
		}
		return resp
	}}
}

func (b *Broker) handleTxnOffsetCommit(rq *request, req *kmsg.TxnOffsetCommitRequest) reply {
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	st := b.node.State()
	for _, rt := range req.Topics {
		ot := kmsg.NewTxnOffsetCommitResponseTopic()
		ot.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			op := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			op.Partition = rp.Partition
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	setAll := func(e *kerr.Error) reply {
		e = fenced(e, req.Version, 3)
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				resp.Topics[i].Partitions[j].ErrorCode = e.Code
			}
		}
		return now(resp)
	}
	switch {
	case !b.authorized(rq, opWrite, resTxnID, req.TransactionalID):
		return setAll(kerr.TransactionalIDAuthorizationFailed)
	case !b.authorized(rq, opRead, resGroup, req.Group):
		return setAll(kerr.GroupAuthorizationFailed)
	}
	// Topics the client may not READ are answered TOPIC_AUTHORIZATION_FAILED
	// and the others committed, as Kafka does.
	topicDenied := make([]bool, len(req.Topics))
	for i, rt := range req.Topics {
		topicDenied[i] = !b.authorized(rq, opRead, resTopic, rt.Topic)
	}
	if req.Group == "" {
		return setAll(kerr.InvalidGroupID)
	}
	sh, e := b.groups.shardFor(req.Group)
	if e != nil {
		return setAll(e)
	}
	_, txnAddr, ce := b.txnCoordinatorOf(st, req.TransactionalID)
	if ce != nil {
		return setAll(offsetVerifyErr(ce, req.Version))
	}
	var guard uint64
	if txnAddr != "" {
		// The transaction coordinator is another broker: it verifies (or,
		// v5+, adds) the offsets partition, as Kafka's group coordinator
		// asks it; the guard keeps a marker that lands meanwhile from
		// being overtaken by this commit (txn_verify.go).
		sh.p.mu.Lock()
		ongoing, g := sh.p.beginVerify(req.ProducerID, req.ProducerEpoch)
		sh.p.mu.Unlock()
		if !ongoing {
			guard = g
			errs := b.txns.verifyRemote(rq.c.ctx, txnAddr, req.TransactionalID, req.ProducerID, req.ProducerEpoch,
				[]topicPartition{{offsetsTopic, sh.index}}, req.Version >= 5)
			if errs[0] != nil {
				sh.p.mu.Lock()
				sh.p.endVerify(req.ProducerID, guard)
				sh.p.mu.Unlock()
				return setAll(offsetVerifyErr(errs[0], req.Version))
			}
		}
	} else if req.Version >= 5 {
		// Transaction version 2: the commit adds the offsets partition
		// itself (no AddOffsetsToTxn).
		errs, wait := b.addPartitions(rq.c.ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch,
			[]txn.TopicPartition{{Topic: offsetsTopic, Partition: sh.index}}, addImplicit)
		e := errs[0]
		if e == nil && wait != nil {
			e = wait(rq.c.ctx)
		}
		if e != nil {
			return setAll(e)
		}
	}
	if txnAddr == "" {
		// The offsets partition must be in the producer's ongoing
		// transaction.
		c := b.txns
		c.mu.Lock()
		m, e := c.lookupTxn(req.TransactionalID)
		if e == nil {
			switch {
			case m.ProducerID != req.ProducerID:
				e = kerr.InvalidProducerIDMapping
			case m.Epoch != req.ProducerEpoch:
				e = kerr.ProducerFenced
			case !m.Has(txn.TopicPartition{Topic: offsetsTopic, Partition: sh.index}):
				e = kerr.InvalidTxnState
			}
		}
		c.mu.Unlock()
		if e != nil {
			return setAll(e)
		}
	}
	t := time.Now()
	nowMS := t.UnixMilli()
	sh.mu.Lock()
	st = b.node.State() // see handleOffsetCommit
	gen := int32(-1)
	if req.Version >= 3 {
		gen = req.Generation
	}
	g := b.groups.getOrCreate(sh, req.Group, true, t)
	if req.Version >= 3 && (gen >= 0 || req.MemberID != "") {
		// KIP-447: a commit from a member of an older generation is
		// fenced, so a zombie's transaction cannot commit offsets.
		if e := g.ValidateCommit(req.MemberID, req.InstanceID, gen); e != nil {
			sh.mu.Unlock()
			return setAll(e)
		}
	}
	var recs []record
	// The offsets join the producer's pending set only once their append
	// succeeded, as Kafka drops a pending offset commit whose append
	// failed: a marker must never materialize offsets the log lacks.
	type pending struct {
		tp group.TopicPartition
		o  group.Offset
	}
	var adds []pending
	for i, rt := range req.Topics {
		for j, rp := range rt.Partitions {
			out := &resp.Topics[i].Partitions[j]
			switch {
			case topicDenied[i]:
				out.ErrorCode = kerr.TopicAuthorizationFailed.Code
				continue
			case !topicHas(st, rt.Topic, rp.Partition):
				out.ErrorCode = kerr.UnknownTopicOrPartition.Code
				continue
			case rp.Metadata != nil && len(*rp.Metadata) > offsetMetadataMaxBytes:
				out.ErrorCode = kerr.OffsetMetadataTooLarge.Code
				continue
			}
			o := group.Offset{Offset: rp.Offset, LeaderEpoch: -1, CommitTime: nowMS, ExpireTime: -1, TopicID: st.Topics[rt.Topic].ID}
			if rp.Metadata != nil {
				o.Metadata = *rp.Metadata
			}
			if req.Version >= 2 {
				o.LeaderEpoch = rp.LeaderEpoch
			}
			tp := group.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}
			recs = append(recs, record{key: offsetKey(req.Group, tp), value: offsetValue(o)})
			adds = append(adds, pending{tp, o})
		}
	}
	if len(recs) == 0 {
		sh.mu.Unlock()
		return now(resp)
	}
	var ended bool
	last, err := appendInternalWith(sh.p, txnBatch(recs, nowMS, req.ProducerID, req.ProducerEpoch), func() error {
		if txnAddr != "" && !sh.p.verified(req.ProducerID, req.ProducerEpoch, guard) {
			ended = true
			return errTxnEnded
		}
		sh.p.endVerify(req.ProducerID, guard)
		return nil
	})
	if ended {
		sh.mu.Unlock()
		return setAll(kerr.InvalidTxnState)
	}
	if err != nil {
		sh.mu.Unlock()
		b.log.Error("transactional offset commit", "group", req.Group, "err", err)
		return setAll(kerr.CoordinatorNotAvailable)
	}
	set := sh.txnOffsets[req.ProducerID]
	if set == nil {
		set = txnOffsetSet{}
		sh.txnOffsets[req.ProducerID] = set
	}
	for _, a := range adds {
		set.add(req.Group, a.tp, a.o)
	}
	sh.mu.Unlock()
	return reply{wait: func(ctx context.Context) kmsg.Response {
		if e := sh.waitDurable(ctx, last); e != nil {
			return setAll(e).resp
		}
		return resp
	}}
}

func (b *Broker) handleEndTxn(rq *request, req *kmsg.EndTxnRequest) reply {
	resp := req.ResponseKind().(*kmsg.EndTxnResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if !b.authorized(rq, opWrite, resTxnID, req.TransactionalID) {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return now(resp)
	}
	c := b.txns
	t := time.Now()
	c.mu.Lock()
	m, e := c.lookupTxn(req.TransactionalID)
	if e == nil && c.inflight[req.TransactionalID] {
		e = kerr.ConcurrentTransactions
	}
	var res txn.EndResultV2
	if e == nil {
		if req.Version >= 5 {
			res = m.EndTxnV2(req.ProducerID, req.ProducerEpoch, req.Commit, t.UnixMilli())
		} else {
			res.EndResult = m.EndTxn(req.ProducerID, req.ProducerEpoch, req.Commit, t.UnixMilli())
		}
		e = res.Err
	}
	if e == nil && res.NeedNewID {
		pid, err := b.nextProducerID(rq.c.ctx)
		if err != nil {
			e = kerr.CoordinatorNotAvailable // prepared in memory only: the tick writes and completes it
		} else {
			m.NextProducerID = pid
		}
	}
	if e != nil {
		c.mu.Unlock()
		resp.ErrorCode = fenced(e, req.Version, 2).Code
		return now(resp)
	}
	resp.ProducerID, resp.ProducerEpoch = m.ProducerID, m.Epoch
	if !res.Prepared {
		c.mu.Unlock()
		return now(resp)
	}
	w, err := c.persist(m, t)
	cp := c.prepared(m)
	c.mu.Unlock()
	return reply{wait: func(ctx context.Context) kmsg.Response {
		if e := persistedErr(ctx, w, err); e != nil {
			// The prepare may or may not be durable; the tick finishes
			// what the log holds.
			c.mu.Lock()
			delete(c.inflight, cp.id)
			c.mu.Unlock()
			resp.ErrorCode = e.Code
			return resp
		}
		if e := c.complete(ctx, cp); e != nil {
			// Prepared and durable: the outcome is decided and the tick
			// retries the markers, so the client may consider it done.
			b.log.Warn("transaction markers failed, retrying in background", "transactional_id", cp.id, "err", e)
		}
		if req.Version >= 5 {
			// The producer continues with the id and epoch after the
			// bump (and a new id if the epoch ran out).
			c.mu.Lock()
			if m := c.txns[cp.id]; m != nil {
				resp.ProducerID, resp.ProducerEpoch = m.ProducerID, m.Epoch
			}
			c.mu.Unlock()
		}
		return resp
	}}
}

// handleWriteTxnMarkers writes the markers a transaction coordinator (this
// broker's or another's) sends, every partition at once, and answers when
// all are durable and replicated, with Kafka's per-partition errors:
// UNKNOWN_TOPIC_OR_PARTITION for a partition this broker hosts no replica
// of, NOT_LEADER_OR_FOLLOWER when it is not the leader (the coordinator
// retries both with fresh metadata).
func (b *Broker) handleWriteTxnMarkers(rq *request, req *kmsg.WriteTxnMarkersRequest) reply {
	resp := req.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
	clusterDenied := !b.authorizedCluster(rq, opClusterAction)
	return reply{wait: func(ctx context.Context) kmsg.Response {
		var wg sync.WaitGroup
		for _, mk := range req.Markers {
			om := kmsg.NewWriteTxnMarkersResponseMarker()
			om.ProducerID = mk.ProducerID
			for _, t := range mk.Topics {
				ot := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
				ot.Topic = t.Topic
				for _, p := range t.Partitions {
					op := kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
					op.Partition = p
					ot.Partitions = append(ot.Partitions, op)
				}
				om.Topics = append(om.Topics, ot)
			}
			resp.Markers = append(resp.Markers, om)
		}
		// Each goroutine writes only its own partition's answer; Wait
		// orders those writes before the return.
		for i, mk := range req.Markers {
			for j, t := range mk.Topics {
				for k, p := range t.Partitions {
					out := &resp.Markers[i].Topics[j].Partitions[k]
					if clusterDenied {
						out.ErrorCode = kerr.ClusterAuthorizationFailed.Code
						continue
					}
					if !topicHas(b.node.State(), t.Topic, p) {
						out.ErrorCode = kerr.UnknownTopicOrPartition.Code
						continue
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						if e := b.writeMarker(ctx, t.Topic, p, mk.ProducerID, mk.ProducerEpoch, mk.Committed, mk.CoordinatorEpoch); e != nil {
							out.ErrorCode = e.Code
						}
					}()
				}
			}
		}
		wg.Wait()
		return resp
	}}
}

func (b *Broker) handleDescribeTransactions(rq *request, req *kmsg.DescribeTransactionsRequest) reply {
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	c := b.txns
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range req.TransactionalIDs {
		ts := kmsg.NewDescribeTransactionsResponseTransactionState()
		ts.TransactionalID = id
		ts.ProducerID, ts.ProducerEpoch, ts.StartTimestamp = -1, -1, -1
		if !b.authorized(rq, opDescribe, resTxnID, id) {
			ts.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
			resp.TransactionStates = append(resp.TransactionStates, ts)
			continue
		}
		m, e := c.lookupTxn(id)
		if e == kerr.InvalidProducerIDMapping {
			e = kerr.TransactionalIDNotFound
		}
		if e != nil {
			ts.ErrorCode = e.Code
			resp.TransactionStates = append(resp.TransactionStates, ts)
			continue
		}
		ts.State, ts.TimeoutMillis, ts.StartTimestamp = m.State.String(), m.TimeoutMS, m.StartMS
		ts.ProducerID, ts.ProducerEpoch = m.ProducerID, m.Epoch
		for _, tp := range m.SortedPartitions() {
			if !b.authorized(rq, opDescribe, resTopic, tp.Topic) {
				continue
			}
			if n := len(ts.Topics); n == 0 || ts.Topics[n-1].Topic != tp.Topic {
				t := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
				t.Topic = tp.Topic
				ts.Topics = append(ts.Topics, t)
			}
			t := &ts.Topics[len(ts.Topics)-1]
			t.Partitions = append(t.Partitions, tp.Partition)
		}
		resp.TransactionStates = append(resp.TransactionStates, ts)
	}
	return now(resp)
}

func (b *Broker) handleListTransactions(rq *request, req *kmsg.ListTransactionsRequest) reply {
	resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
	var pattern *regexp.Regexp
	if req.TransactionalIDPattern != nil && *req.TransactionalIDPattern != "" {
		re, err := regexp.Compile(*req.TransactionalIDPattern)
		if err != nil {
			resp.ErrorCode = kerr.InvalidRegularExpression.Code
			return now(resp)
		}
		pattern = re
	}
	nowMS := time.Now().UnixMilli()
	c := b.txns
	c.mu.Lock()
	defer c.mu.Unlock()
	known := map[string]bool{}
	for s := txn.Empty; s <= txn.PrepareEpochFence; s++ {
		known[s.String()] = true
	}
	for _, f := range req.StateFilters {
		if !known[f] {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, f)
		}
	}
	ids := make([]string, 0, len(c.txns))
	for id := range c.txns {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		m := c.txns[id]
		switch {
		case len(req.StateFilters) > 0 && !slices.Contains(req.StateFilters, m.State.String()):
			continue
		case len(req.ProducerIDFilters) > 0 && !slices.Contains(req.ProducerIDFilters, m.ProducerID):
			continue
		case req.DurationFilterMillis >= 0 && req.Version >= 1 && (m.StartMS < 0 || nowMS-m.StartMS < req.DurationFilterMillis):
			continue
		case pattern != nil && !pattern.MatchString(id):
			continue
		case !b.authorized(rq, opDescribe, resTxnID, id):
			continue
		}
		ts := kmsg.NewListTransactionsResponseTransactionState()
		ts.TransactionalID, ts.ProducerID, ts.TransactionState = id, m.ProducerID, m.State.String()
		resp.TransactionStates = append(resp.TransactionStates, ts)
	}
	return now(resp)
}

// describeTxnForTest is a debugging aid for tests: id's state as a string.
func (c *txnCoordinator) describeTxnForTest(id string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.txns[id]
	if m == nil {
		return "<none>"
	}
	return fmt.Sprintf("%s pid=%d epoch=%d parts=%v", m.State, m.ProducerID, m.Epoch, m.SortedPartitions())
}

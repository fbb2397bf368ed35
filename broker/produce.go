package broker

// Produce, versions 0-13 (v13 addresses topics by ID).
//
// Versions 0-2 are advertised because Kafka 4 advertises them too (librdkafka
// refuses to produce compressed data otherwise, KAFKA-18659); their magic 0/1
// message sets are rejected with UNSUPPORTED_FOR_MESSAGE_FORMAT (Strom, like
// Kafka 4, stores only the v2 batch format). A v3+ request must carry exactly
// one v2 batch per partition (INVALID_RECORD otherwise), as Kafka requires.
//
// Validation per batch, in Kafka's order: base offset 0, size vs
// max.message.bytes (MESSAGE_TOO_LARGE), CRC-32C (CORRUPT_MESSAGE), offset
// range vs record count, no control batches, sequence >= 0 for idempotent
// batches, codec (zstd needs v7+), then every record: keys on compacted
// topics and timestamps vs message.timestamp.before/after.max.ms
// (INVALID_RECORD / INVALID_TIMESTAMP with per-record errors on v8+).
//
// Offsets are assigned by stamping the batch header in place (base offset and
// partition leader epoch lie outside the CRC); the max timestamp is fixed up
// (and the CRC recomputed) when it disagrees with the records or the topic
// uses LogAppendTime. Bytes are stored unchanged otherwise. A topic whose
// compression.type names a codec other than the batch's gets the batch
// rebuilt with that codec, as Kafka does.
//
// Idempotence (producer id >= 0) follows Kafka 2.5+: duplicates of one of the
// last five batches are answered with the original offsets; a lower epoch is
// INVALID_PRODUCER_EPOCH; a new epoch must start at sequence 0 and the same
// epoch must continue the sequence (OUT_OF_ORDER_SEQUENCE_NUMBER); a producer
// with no state may start at any sequence (no UNKNOWN_PRODUCER_ID).
//
// acks=0 sends no response (errors close the connection, as Kafka does);
// acks=1 answers after the write; acks=all answers after storage.Log.Sync for
// the fsync policy, waiting outside the partition lock.
//
// Transactional batches are accepted only for partitions in the producer's
// ongoing transaction at its current epoch (KIP-890 part 1 verification):
// INVALID_TXN_STATE otherwise, INVALID_PRODUCER_EPOCH for an older epoch.
// From v12 on a transactional batch adds its partition to the transaction
// first (transaction version 2, KIP-890 part 2). The check is a local call
// when this broker coordinates the producer's transactional id, and an
// AddPartitionsToTxn (broker form) to the coordinator otherwise
// (txn_verify.go), whose retriable errors the producer sees as
// NOT_ENOUGH_REPLICAS, as from Kafka.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/raft"
	"github.com/stromhq/strom/storage"
)

func init() {
	register(&kmsg.ProduceRequest{}, 0, 13, (*Broker).handleProduce)
	// handleProduce keeps nothing of the frame: batches are copied into the
	// log (or rebuilt) before it returns, and answers hold only offsets,
	// timestamps and copied error messages.
	frameFree[kmsg.Produce.Int16()] = true
}

// produceSync is one acks=all partition waiting for durability.
type produceSync struct {
	p      *partition
	last   int64
	epoch  int32 // the leader epoch the write was accepted in
	ti, pi int   // index of the partition's answer in the response
}

func (b *Broker) handleProduce(rq *request, req *kmsg.ProduceRequest) reply {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	st := b.node.State()
	// Kafka checks WRITE on the transactional id of a request carrying
	// transactional batches first and fails every partition with it, then
	// WRITE on each topic (before its existence, so unauthorized clients
	// cannot probe topic names).
	txnDenied := b.authz.enabled && hasTransactionalBatch(req) &&
		(req.TransactionID == nil || !b.authorized(rq, opWrite, resTxnID, *req.TransactionID))
	var pre map[*partition]txnPreVerified
	if !txnDenied {
		pre = b.preVerifyTxn(st, req)
	}
	var syncs []produceSync
	anyErr := false
	for ti := range req.Topics {
		rt := &req.Topics[ti]
		ot := kmsg.NewProduceResponseTopic()
		ot.Topic, ot.TopicID = rt.Topic, rt.TopicID
		name := rt.Topic
		topicErr := (*kerr.Error)(nil)
		if req.Version >= 13 {
			if t, ok := st.TopicsByID[rt.TopicID]; ok {
				name = t.Name
			} else {
				topicErr = kerr.UnknownTopicID
			}
		}
		if topicErr == nil && !txnDenied && !b.authorized(rq, opWrite, resTopic, name) {
			topicErr = kerr.TopicAuthorizationFailed
		}
		for pi := range rt.Partitions {
			rp := &rt.Partitions[pi]
			op := kmsg.NewProduceResponseTopicPartition()
			op.Partition = rp.Partition
			op.BaseOffset, op.LogAppendTime, op.LogStartOffset = -1, -1, -1
			ot.Partitions = append(ot.Partitions, op)
			out := &ot.Partitions[len(ot.Partitions)-1]
			var p *partition
			var e *kerr.Error
			var msg string
			switch {
			case txnDenied:
				e = kerr.TransactionalIDAuthorizationFailed
			case topicErr != nil:
				e = topicErr
			case req.Acks != 0 && req.Acks != 1 && req.Acks != -1:
				e = kerr.InvalidRequiredAcks
			case st.Topics[name] != nil && st.Topics[name].Internal:
				// Only the coordinators write internal topics (Kafka:
				// "Cannot append to internal topic").
				e = kerr.InvalidTopicException
			default:
				p, e = b.lookupPartition(st, name, rp.Partition)
			}
			if e == nil && req.Acks == -1 {
				e = b.checkMinISR(st, name, rp.Partition, p)
			}
			var last int64
			var epoch int32
			if e == nil {
				last, epoch, e, msg = b.produceTo(p, req, rp.Records, out, pre)
			}
			if e != nil {
				anyErr = true
				out.ErrorCode = e.Code
				if req.Version >= 8 && msg != "" {
					out.ErrorMessage = kmsg.StringPtr(msg)
				}
				continue
			}
			if req.Acks == -1 && last >= 0 {
				syncs = append(syncs, produceSync{p: p, last: last, epoch: epoch, ti: len(resp.Topics), pi: len(ot.Partitions) - 1})
			}
		}
		resp.Topics = append(resp.Topics, ot)
	}
	// producer_byte_rate counts the whole request, as Kafka does, also for
	// acks=0 (which has no response to carry the throttle: the connection
	// is only muted). Muting here, on the read loop, holds the very next
	// request back; the writer mutes again when it sends the response.
	if d := b.recordQuota(st, rq, quotaProduce, float64(rq.size)); d > 0 {
		rq.c.mute(d)
		resp.ThrottleMillis = throttleMillis(d)
	}
	if req.Acks == 0 {
		return reply{none: true, closeConn: anyErr}
	}
	if len(syncs) == 0 {
		return now(resp)
	}
	timeout := time.Duration(req.TimeoutMillis) * time.Millisecond
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	return reply{wait: func(context.Context) kmsg.Response {
		// Durability of an accepted write is not abandoned at shutdown: Close
		// syncs the logs anyway, so wait with the request timeout only.
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		// The partitions' fsyncs run at once, so the ack waits for the
		// slowest, not for their sum. Each goroutine writes only its own
		// partition's answer; Wait orders those writes before the return.
		var wg sync.WaitGroup
		for i := range syncs[1:] {
			wg.Add(1)
			go func(s *produceSync) {
				defer wg.Done()
				s.await(ctx, resp)
			}(&syncs[i+1])
		}
		syncs[0].await(ctx, resp)
		wg.Wait()
		return resp
	}}
}

// hasTransactionalBatch reports whether any partition of req carries a
// transactional batch (one batch per partition from v3 on; the first is
// looked at, malformed ones are left to validation).
func hasTransactionalBatch(req *kmsg.ProduceRequest) bool {
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			if h, err := storage.ParseBatchHeader(rp.Records); err == nil && h.IsTransactional() {
				return true
			}
		}
	}
	return false
}

// await blocks until the partition's write is durable here and the high
// watermark has passed it (every ISR member has it durable too); on failure
// it turns the partition's answer into the error.
func (s *produceSync) await(ctx context.Context, resp *kmsg.ProduceResponse) {
	if e := s.p.commit(ctx, s.last, s.epoch); e != nil {
		out := &resp.Topics[s.ti].Partitions[s.pi]
		out.ErrorCode = e.Code
		out.BaseOffset = -1
	}
}

// lookupPartition finds a partition this broker leads.
func (b *Broker) lookupPartition(st *raft.State, topic string, index int32) (*partition, *kerr.Error) {
	t, ok := st.Topics[topic]
	if !ok || index < 0 || int(index) >= len(t.Partitions) {
		return nil, kerr.UnknownTopicOrPartition
	}
	if t.Partitions[index].Leader != b.cfg.NodeID || !b.mayLead(st) {
		return nil, kerr.NotLeaderForPartition
	}
	p := b.parts.get(topic, index)
	if p == nil || p.topicID != t.ID {
		return nil, kerr.NotLeaderForPartition
	}
	return p, nil
}

// checkMinISR refuses acks=all when the ISR is smaller than
// min.insync.replicas (NOT_ENOUGH_REPLICAS), as Kafka does before appending.
func (b *Broker) checkMinISR(st *raft.State, topic string, index int32, p *partition) *kerr.Error {
	isr := len(st.Topics[topic].Partitions[index].ISR)
	if int32(isr) < p.cfg.Load().minISR {
		return kerr.NotEnoughReplicas
	}
	return nil
}

// storageErr maps a storage error to a Kafka error.
func storageErr(err error) *kerr.Error {
	switch {
	case errors.Is(err, storage.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange
	case errors.Is(err, storage.ErrClosed), errors.Is(err, errNotLeading):
		return kerr.NotLeaderForPartition
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return kerr.RequestTimedOut
	case errors.Is(err, storage.ErrCorrupt):
		return kerr.KafkaStorageError
	default:
		return kerr.KafkaStorageError
	}
}

// batchCheck is the outcome of validating one produced batch.
type batchCheck struct {
	hdr          storage.BatchHeader
	batch        []byte // possibly rebuilt
	maxTimestamp int64
	recordErrs   []kmsg.ProduceResponseTopicPartitionErrorRecord
}

// produceTo validates and appends one partition's records. It returns the
// last offset written (for a duplicate the original batch's, so acks=all
// still waits until that batch is committed, as Kafka's delayed produce
// does) and the leader epoch it was written in, or a Kafka error and
// message.
// pre holds the request's transactional batches already verified with a
// remote coordinator (preVerifyTxn; nil when none).
func (b *Broker) produceTo(p *partition, req *kmsg.ProduceRequest, records []byte, out *kmsg.ProduceResponseTopicPartition, pre map[*partition]txnPreVerified) (int64, int32, *kerr.Error, string) {
	pc := p.cfg.Load()
	if len(records) == 0 {
		if req.Version >= 3 {
			return 0, 0, kerr.InvalidRecord, fmt.Sprintf("Produce requests with version %d must have at least one record batch per partition", req.Version)
		}
		return 0, 0, kerr.CorruptMessage, "empty message set"
	}
	if len(records) <= magicPos {
		return 0, 0, kerr.CorruptMessage, "message set too short"
	}
	if magic := records[magicPos]; magic != 2 {
		if req.Version >= 3 {
			return 0, 0, kerr.InvalidRecord, fmt.Sprintf("Produce requests with version %d are only allowed to contain record batches with magic version 2", req.Version)
		}
		if magic > 2 {
			return 0, 0, kerr.CorruptMessage, fmt.Sprintf("unknown magic %d", magic)
		}
		return 0, 0, kerr.UnsupportedForMessageFormat, fmt.Sprintf("message format v%d is not supported; use record batches (magic 2)", magic)
	}
	now := time.Now().UnixMilli()
	chk, e, msg := validateBatch(records, req.Version, pc, now)
	if e != nil {
		if req.Version >= 8 {
			out.ErrorRecords = chk.recordErrs
		}
		return 0, 0, e, msg
	}
	h := chk.hdr
	batch := chk.batch

	if h.IsTransactional() && (p.topic == txnTopic || p.topic == offsetsTopic) {
		return 0, 0, kerr.InvalidTxnState, "transactional produce to an internal topic"
	}
	var txnID, txnAddr string
	if h.IsTransactional() {
		if req.TransactionID != nil {
			txnID = *req.TransactionID
		}
		var ce *kerr.Error
		if txnID != "" {
			_, txnAddr, ce = b.txnCoordinatorOf(b.node.State(), txnID)
		}
		if ce != nil {
			e, msg := produceVerifyErr(ce, req.Version)
			return 0, 0, e, msg
		}
	}
	if h.IsTransactional() && txnAddr == "" && req.Version >= 12 {
		// Transaction version 2 with the coordinator here: the produce
		// adds its partition to the transaction (before the append,
		// durable, as Kafka's AddPartitionsToTxn from the partition
		// leader).
		if e := b.txns.implicitAdd(context.Background(), h.ProducerID, h.ProducerEpoch, p.topic, p.index); e != nil {
			return 0, 0, e, "could not add the partition to the transaction"
		}
	}
	p.mu.Lock()
	var guard uint64
	if h.IsTransactional() && txnAddr != "" {
		// The coordinator is another broker: ask it (and for v12+ let it
		// add the partition); p.mu is released meanwhile and the guard
		// makes sure no marker for the producer came in between.
		var e *kerr.Error
		var msg string
		if pv, ok := pre[p]; ok && pv.pid == h.ProducerID && pv.epoch == h.ProducerEpoch {
			guard, e, msg = pv.check(p, req.Version)
		} else {
			guard, e, msg = b.verifyRemoteBatch(p, txnAddr, txnID, h, req.Version)
		}
		if e != nil {
			p.mu.Unlock()
			return 0, 0, e, msg
		}
	} else if h.IsTransactional() {
		// Verified under p.mu: a marker for this partition cannot be
		// written between the check and the append, so the batch always
		// lands inside the transaction it was verified against.
		if e, msg := b.txns.verifyProduce(txnID, h.ProducerID, h.ProducerEpoch, p.topic, p.index); e != nil {
			p.mu.Unlock()
			e, _ = produceVerifyErr(e, req.Version) // the error codes this client knows
			return 0, 0, e, msg
		}
	}
	// The request looked leadership up before it took p.mu; a replica that
	// has become a follower since must not append (its log is the new
	// leader's copy now), and what it appends is stamped with the epoch it
	// leads, so a later leader can tell the write apart by that epoch.
	epoch := p.leaderEpoch.Load()
	if !p.isLeader(epoch) {
		p.mu.Unlock()
		return 0, 0, kerr.NotLeaderForPartition, ""
	}
	if h.ProducerID >= 0 {
		entry, exists := p.log.Producer(h.ProducerID)
		dup, e, msg := checkSequence(entry, exists, h)
		if e != nil {
			p.mu.Unlock()
			return 0, 0, e, msg
		}
		if dup != nil {
			p.mu.Unlock()
			out.BaseOffset = dup.FirstOffset
			if pc.logAppendTime {
				out.LogAppendTime = dup.Timestamp
			}
			out.LogStartOffset = p.log.LogStartOffset()
			return dup.LastOffset, epoch, nil, ""
		}
	}
	base := p.log.EndOffset()
	storage.SetBaseOffset(batch, base)
	storage.SetPartitionLeaderEpoch(batch, epoch)
	// validateBatch checked the CRC (or recomputed it after changing the
	// batch); the two stamps above lie outside it.
	info, err := p.log.AppendVerified(batch)
	if err != nil {
		p.mu.Unlock()
		b.log.Error("append", "topic", p.topic, "partition", p.index, "err", err)
		return 0, 0, storageErr(err), err.Error()
	}
	logStart := p.log.LogStartOffset()
	if guard != 0 {
		// The transaction is open in the log now; later batches of it
		// need no guard.
		p.endVerify(h.ProducerID, guard)
	}
	p.checkInvariants()
	// The high watermark is at most what is durable here. Without per-write
	// fsync that is everything appended; with it, what Sync covered. The partition's background flusher starts the fsync
	// at once for every acks level (group commit folds these fsyncs
	// together): acks=all also waits for it in its reply, but the connection
	// writer runs that wait only when the previous answer is out, so starting
	// the fsync there would serialize the fsyncs of pipelined requests. The
	// flusher is asked under mu so it is never started after the partition
	// was closed.
	if pc.store.Fsync != storage.FsyncAlways {
		p.mu.Unlock()
		p.markDurable(info.LastOffset + 1)
	} else {
		p.requestFlush(info.LastOffset)
		p.mu.Unlock()
	}
	p.appendedReplicated()

	out.BaseOffset = info.FirstOffset
	if pc.logAppendTime {
		out.LogAppendTime = chk.maxTimestamp
	}
	out.LogStartOffset = logStart
	return info.LastOffset, epoch, nil, ""
}

// txnPreVerified is one partition's outcome of verifying a produce
// request's transactional batches with their remote coordinator in one
// round trip (preVerifyTxn).
type txnPreVerified struct {
	pid   int64
	epoch int16
	guard uint64
	err   *kerr.Error // the coordinator's, untranslated
}

// check turns a pre-verification into produceTo's answer, like
// verifyRemoteBatch's. Caller holds p.mu.
func (pv txnPreVerified) check(p *partition, version int16) (uint64, *kerr.Error, string) {
	if pv.err != nil {
		p.endVerify(pv.pid, pv.guard)
		e, msg := produceVerifyErr(pv.err, version)
		return 0, e, msg
	}
	if !p.verified(pv.pid, pv.epoch, pv.guard) {
		return 0, kerr.InvalidTxnState, "the transaction ended while the batch was being verified"
	}
	return pv.guard, nil, ""
}

// preVerifyTxn verifies (or, v12+, adds) all the transactional batches of
// req for partitions led here whose producer has no open transaction in
// them yet, with one AddPartitionsToTxn per producer and epoch to the
// remote coordinator of req's transactional id, instead of one round trip
// per partition. It returns nil when the coordinator is this broker or
// nothing needs verifying; produceTo verifies what is missing itself.
func (b *Broker) preVerifyTxn(st *raft.State, req *kmsg.ProduceRequest) map[*partition]txnPreVerified {
	if req.TransactionID == nil || *req.TransactionID == "" {
		return nil
	}
	id := *req.TransactionID
	_, addr, ce := b.txnCoordinatorOf(st, id)
	if ce != nil || addr == "" {
		return nil
	}
	type producer struct {
		pid   int64
		epoch int16
	}
	var order []producer
	groups := map[producer][]*partition{}
	out := map[*partition]txnPreVerified{}
	for ti := range req.Topics {
		rt := &req.Topics[ti]
		name := rt.Topic
		if req.Version >= 13 {
			t, ok := st.TopicsByID[rt.TopicID]
			if !ok {
				continue
			}
			name = t.Name
		}
		for pi := range rt.Partitions {
			rp := &rt.Partitions[pi]
			h, err := storage.ParseBatchHeader(rp.Records)
			if err != nil || !h.IsTransactional() || h.ProducerID < 0 || name == txnTopic || name == offsetsTopic {
				continue
			}
			p, e := b.lookupPartition(st, name, rp.Partition)
			if e != nil {
				continue
			}
			if _, seen := out[p]; seen {
				continue
			}
			p.mu.Lock()
			ongoing, guard := p.beginVerify(h.ProducerID, h.ProducerEpoch)
			p.mu.Unlock()
			if ongoing {
				continue
			}
			k := producer{h.ProducerID, h.ProducerEpoch}
			if groups[k] == nil {
				order = append(order, k)
			}
			groups[k] = append(groups[k], p)
			out[p] = txnPreVerified{pid: k.pid, epoch: k.epoch, guard: guard}
		}
	}
	for _, k := range order {
		ps := groups[k]
		tps := make([]topicPartition, len(ps))
		for i, p := range ps {
			tps[i] = topicPartition{p.topic, p.index}
		}
		errs := b.txns.verifyRemote(b.ctx, addr, id, k.pid, k.epoch, tps, req.Version >= 12)
		for i, p := range ps {
			pv := out[p]
			pv.err = errs[i]
			out[p] = pv
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// verifyRemoteBatch verifies a transactional batch for p with the
// producer's coordinator at addr (txn_verify.go) and returns the guard to
// clear after the append (0: none). It is called and returns with p.mu
// held, but releases it during the round trip; on success nothing ended
// the transaction in p since the coordinator answered.
func (b *Broker) verifyRemoteBatch(p *partition, addr, id string, h storage.BatchHeader, version int16) (uint64, *kerr.Error, string) {
	ongoing, guard := p.beginVerify(h.ProducerID, h.ProducerEpoch)
	if ongoing {
		return 0, nil, ""
	}
	p.mu.Unlock()
	errs := b.txns.verifyRemote(b.ctx, addr, id, h.ProducerID, h.ProducerEpoch,
		[]topicPartition{{p.topic, p.index}}, version >= 12)
	p.mu.Lock()
	if errs[0] != nil {
		p.endVerify(h.ProducerID, guard)
		e, msg := produceVerifyErr(errs[0], version)
		return 0, e, msg
	}
	if !p.verified(h.ProducerID, h.ProducerEpoch, guard) {
		return 0, kerr.InvalidTxnState, "the transaction ended while the batch was being verified"
	}
	return guard, nil, ""
}

// validateBatch checks one v2 batch as Kafka's UnifiedLog and LogValidator
// do and returns it ready to stamp: max timestamp fixed, LogAppendTime set,
// or rebuilt for the topic's compression.type.
func validateBatch(records []byte, version int16, pc *partConfig, now int64) (batchCheck, *kerr.Error, string) {
	var chk batchCheck
	h, err := storage.ParseBatchHeader(records)
	if err != nil {
		return chk, kerr.CorruptMessage, fmt.Sprintf("invalid record batch: %v", err)
	}
	if h.Size() < len(records) {
		return chk, kerr.InvalidRecord, fmt.Sprintf("Produce requests with version %d are only allowed to contain exactly one record batch per partition", version)
	}
	if h.Size() > len(records) || h.Size() < batchHeaderSize {
		return chk, kerr.CorruptMessage, "record batch is truncated"
	}
	if h.BaseOffset != 0 {
		return chk, kerr.InvalidRecord, fmt.Sprintf("The baseOffset of the record batch in the append should be 0, but it is %d", h.BaseOffset)
	}
	if int64(len(records)) > int64(pc.maxMessageBytes) {
		return chk, kerr.MessageTooLarge, fmt.Sprintf("The record batch size in the append is %d bytes which exceeds the maximum configured value of %d.", len(records), pc.maxMessageBytes)
	}
	if err := storage.VerifyCRC(records); err != nil {
		return chk, kerr.CorruptMessage, fmt.Sprintf("Record batch is corrupt: %v", err)
	}
	if h.LastOffsetDelta < 0 || h.NumRecords <= 0 || int64(h.LastOffsetDelta)+1 != int64(h.NumRecords) {
		return chk, kerr.InvalidRecord, fmt.Sprintf("Inconsistent batch offset range [0, %d] and count of records %d", h.LastOffsetDelta, h.NumRecords)
	}
	if h.IsControl() {
		return chk, kerr.InvalidRecord, "Clients are not allowed to write control records"
	}
	if h.ProducerID >= 0 && h.BaseSequence < 0 {
		return chk, kerr.InvalidRecord, fmt.Sprintf("Invalid sequence number %d in record batch with producerId %d", h.BaseSequence, h.ProducerID)
	}
	if h.IsTransactional() && h.ProducerID < 0 {
		return chk, kerr.InvalidRecord, "Transactional record batches must carry a producer id"
	}
	codec := h.Compression()
	if codec > storage.CompressionZstd {
		return chk, kerr.CorruptMessage, fmt.Sprintf("unknown compression codec %d", codec)
	}
	if codec == storage.CompressionZstd && version < 7 {
		return chk, kerr.UnsupportedCompressionType, "Produce requests with version < 7 are not allowed to use ZStandard compression"
	}
	raw, err := storage.Decompress(codec, records[batchHeaderSize:])
	if err != nil {
		return chk, kerr.CorruptMessage, fmt.Sprintf("cannot decompress record batch: %v", err)
	}
	compacted := pc.store.Compact
	createTime := !pc.logAppendTime
	if h.TimestampType() == 1 {
		chk.recordErrs = append(chk.recordErrs, recordErr(0, "Producer should not set timestamp type to LogAppendTime."))
		return chk, kerr.InvalidTimestamp, "Invalid timestamp type in message. Producer should not set timestamp type to LogAppendTime."
	}
	maxTS := int64(-1)
	inOrder := true
	var recs []recordView
	target, recompress := codecByName(pc.compression)
	rebuild := recompress && target != codec
	var firstErr *kerr.Error
	var firstMsg string
	n, err := parseRecords(raw, func(i int, r recordView) error {
		if r.offsetDelta != int32(i) {
			inOrder = false
		}
		ts := h.BaseTimestamp + r.timestampDelta
		if compacted && r.key == nil {
			chk.recordErrs = append(chk.recordErrs, recordErr(i, "Compacted topic cannot accept message without key"))
			if firstErr == nil {
				firstErr, firstMsg = kerr.InvalidRecord, "Compacted topic cannot accept message without key"
			}
		}
		if createTime && ts != -1 && (now-ts > pc.tsBeforeMS || ts-now > pc.tsAfterMS) {
			m := fmt.Sprintf("Timestamp %d of message with offset %d is out of range. The timestamp should be within [%d, %d]", ts, i, satSub(now, pc.tsBeforeMS), satAdd(now, pc.tsAfterMS))
			chk.recordErrs = append(chk.recordErrs, recordErr(i, m))
			if firstErr == nil {
				firstErr, firstMsg = kerr.InvalidTimestamp, "One or more records have been rejected due to invalid timestamp"
			}
		}
		if ts > maxTS {
			maxTS = ts
		}
		if rebuild {
			recs = append(recs, r)
		}
		return nil
	})
	if err != nil {
		return chk, kerr.CorruptMessage, fmt.Sprintf("Record batch is corrupt: %v", err)
	}
	if int32(n) != h.NumRecords {
		return chk, kerr.InvalidRecord, fmt.Sprintf("Record count %d does not match the batch header count %d", n, h.NumRecords)
	}
	if firstErr != nil {
		return chk, firstErr, firstMsg
	}
	chk.recordErrs = nil
	batch := records
	if rebuild || !inOrder {
		if !rebuild {
			// Rare (old clients): collect the records now and renumber them.
			target = codec
			_, _ = parseRecords(raw, func(_ int, r recordView) error { recs = append(recs, r); return nil })
		}
		if batch, err = rebuildBatch(records, recs, target); err != nil {
			return chk, kerr.UnknownServerError, err.Error()
		}
	}
	if pc.logAppendTime {
		maxTS = now
		attrs := binary.BigEndian.Uint16(batch[attributesPos:]) | 1<<3
		binary.BigEndian.PutUint16(batch[attributesPos:], attrs)
		binary.BigEndian.PutUint64(batch[maxTimestampPos:], uint64(now))
		setBatchCRC(batch)
	} else if int64(binary.BigEndian.Uint64(batch[maxTimestampPos:])) != maxTS {
		binary.BigEndian.PutUint64(batch[maxTimestampPos:], uint64(maxTS))
		setBatchCRC(batch)
	}
	if chk.hdr, err = storage.ParseBatchHeader(batch); err != nil {
		return chk, kerr.UnknownServerError, err.Error()
	}
	chk.batch = batch
	chk.maxTimestamp = maxTS
	return chk, nil, ""
}

func recordErr(i int, msg string) kmsg.ProduceResponseTopicPartitionErrorRecord {
	r := kmsg.NewProduceResponseTopicPartitionErrorRecord()
	r.RelativeOffset = int32(i)
	r.ErrorMessage = kmsg.StringPtr(msg)
	return r
}

func satAdd(a, b int64) int64 {
	if b > 0 && a > (1<<63-1)-b {
		return 1<<63 - 1
	}
	return a + b
}

func satSub(a, b int64) int64 {
	if b > 0 && a < -(1<<63)+b {
		return -(1 << 63)
	}
	return a - b
}

// lastSequence is the sequence of the last record of a batch, wrapping
// after MaxInt32 as Kafka's DefaultRecordBatch.incrementSequence does.
func lastSequence(base, delta int32) int32 {
	if base > 1<<31-1-delta {
		return base - (1<<31 - 1 - delta) - 1
	}
	return base + delta
}

// inSequence reports whether next directly follows last.
func inSequence(last, next int32) bool {
	return next == last+1 || (next == 0 && last == 1<<31-1)
}

// checkSequence applies Kafka's idempotent-producer rules to batch h given
// the producer's current state. It returns the cached batch h duplicates, or
// an error.
func checkSequence(entry storage.ProducerEntry, exists bool, h storage.BatchHeader) (*storage.ProducerBatch, *kerr.Error, string) {
	if !exists {
		// No state (new producer, or state removed by retention or
		// DeleteRecords): Kafka 2.5+ accepts any sequence.
		return nil, nil, ""
	}
	last := lastSequence(h.BaseSequence, h.LastOffsetDelta)
	if h.ProducerEpoch == entry.Epoch {
		for i := range entry.Batches {
			pb := &entry.Batches[i]
			if pb.FirstSeq == h.BaseSequence && pb.LastSeq == last {
				return pb, nil, ""
			}
		}
	}
	if h.ProducerEpoch < entry.Epoch {
		return nil, kerr.InvalidProducerEpoch, fmt.Sprintf("Epoch of producer %d is %d, which is smaller than the last seen epoch %d", h.ProducerID, h.ProducerEpoch, entry.Epoch)
	}
	if h.ProducerEpoch != entry.Epoch {
		if h.BaseSequence != 0 {
			return nil, kerr.OutOfOrderSequenceNumber, fmt.Sprintf("Invalid sequence number for new epoch of producer %d: %d (request epoch), %d (seq. number), %d (current producer epoch)", h.ProducerID, h.ProducerEpoch, h.BaseSequence, entry.Epoch)
		}
		return nil, nil, ""
	}
	cur := int32(-1)
	if n := len(entry.Batches); n > 0 {
		cur = entry.Batches[n-1].LastSeq
	}
	if !inSequence(cur, h.BaseSequence) {
		return nil, kerr.OutOfOrderSequenceNumber, fmt.Sprintf("Out of order sequence number for producer %d: %d (incoming seq. number), %d (current end sequence number)", h.ProducerID, h.BaseSequence, cur)
	}
	return nil, nil, ""
}

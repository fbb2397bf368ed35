package broker

// The transaction coordinator: transactional ids live in the internal
// compacted topic __transaction_state, one record per state change (Kafka's
// TxnMetadataKey/TxnMetadataValue schemas), and the coordinator of an id is
// the leader of partition abs(javaHashCode(id)) % N of that topic. The state
// machine itself is package broker/txn; this file persists it, replays it,
// completes transactions (markers go to each partition's leader, here or
// on another broker: txn_markers.go) and times transactions out. When the
// leadership of a __transaction_state partition moves here the new leader
// replays it (again, if it led it before) and finishes every transaction
// it finds prepared; when it moves away its ids are forgotten.
//
// Ordering and durability contract:
//   - Every transition happens under txnCoordinator.mu together with the
//     append of the record that persists it; the reply waits until that
//     record is durable (storage.Log.Sync) before the client sees it.
//   - A Prepare state is committed (durable, and the high watermark past
//     it in the epoch it was appended in) before the first marker is
//     written, and every marker is durable before the Complete state is
//     written, so after a crash or a change of leader a transaction is
//     either still Prepare* (load finishes its markers again; markers are
//     idempotent for readers) or complete everywhere. A state changed in
//     memory and not (yet) appended never leads to a marker (writeOf).
//   - Markers are written without mu held. A transaction in a Prepare state
//     accepts no other request (CONCURRENT_TRANSACTIONS), and inflight makes
//     sure only one goroutine writes its markers.
//
// Lock order: txnCoordinator.mu, then a __transaction_state partition's
// p.mu. Produce verification takes mu while holding a data partition's p.mu;
// that is safe because mu is never held while a data partition's p.mu or a
// group shard's mu is taken.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/broker/txn"
	"github.com/stromhq/strom/raft"
	"github.com/stromhq/strom/storage"
)

// txnTopic is the internal topic holding transaction state.
const txnTopic = "__transaction_state"

// txnCoordinator owns the transactional ids of the __transaction_state
// partitions this broker leads. Its tick goroutine is owned by the Broker
// (bgWG) and stops with the broker's context.
type txnCoordinator struct {
	b *Broker

	// mu guards every field below and every txn.Metadata reachable from
	// them. Lock order: a data partition's mu before this one (produce
	// verifies under the partition lock), so nothing holding mu may take a
	// data partition's lock, e.g. through partitionManager.reconcile; the
	// __transaction_state partitions it appends to are never produced to.
	mu sync.Mutex
	// loaded maps a __transaction_state partition to the replica and
	// leader epoch it was replayed in; ids of partitions not loaded are
	// unknown. A new leader epoch (leadership lost and regained: another
	// coordinator may have written meanwhile) replays it again.
	loaded map[int32]loadedPart
	txns   map[string]*txn.Metadata
	byPID  map[int64]*txn.Metadata
	// inflight holds ids whose markers are being written right now.
	inflight map[string]bool
	// written maps an id to the last append of its state. Markers go out
	// only for a prepared state that append holds, once it is committed
	// (complete): a state a new leader may still truncate, or one that
	// never reached the log, must never reach a data partition, or one
	// partition could commit a transaction the next coordinator aborts.
	written   map[string]stateWrite
	lastAbort time.Time

	// peers are the connections to other brokers for markers and
	// verifications; it has its own lock.
	peers *peerPool
}

// loadedPart is a replayed __transaction_state partition.
type loadedPart struct {
	p     *partition
	epoch int32
}

func newTxnCoordinator(b *Broker) *txnCoordinator {
	return &txnCoordinator{b: b, loaded: map[int32]loadedPart{}, txns: map[string]*txn.Metadata{},
		byPID: map[int64]*txn.Metadata{}, inflight: map[string]bool{}, written: map[string]stateWrite{},
		peers: &peerPool{b: b}}
}

// ensureTxnTopic creates __transaction_state (internal, compacted) if it
// does not exist yet, as Kafka does on the first FindCoordinator for a
// transaction.
func (b *Broker) ensureTxnTopic(ctx context.Context) (*raft.Topic, *kerr.Error) {
	st := b.node.State()
	if t, ok := st.Topics[txnTopic]; ok {
		return t, nil
	}
	brokers := liveBrokers(st)
	if len(brokers) == 0 {
		return nil, kerr.CoordinatorNotAvailable
	}
	rf := min(int(b.cfg.OffsetsTopicReplicationFactor), len(brokers))
	id := raft.NewTopicID()
	parts, err := assignReplicas(st, id, 0, b.cfg.TransactionTopicPartitions, int16(rf))
	if err != nil {
		return nil, kerr.CoordinatorNotAvailable
	}
	t := raft.Topic{
		Name: txnTopic, ID: id, Internal: true,
		Partitions: parts,
		Configs: map[string]string{
			"cleanup.policy":   "compact",
			"compression.type": "uncompressed",
			"segment.bytes":    "104857600",
			// Kafka's transaction.state.log.min.isr (2), capped by the
			// replicas a small cluster can give the topic.
			"min.insync.replicas": strconv.Itoa(min(2, rf)),
		},
	}
	if _, err := b.apply(ctx, raft.CreateTopic{Topic: t}); err != nil && !errors.Is(err, raft.ErrTopicExists) {
		b.log.Warn("create transaction state topic", "err", err)
		return nil, kerr.CoordinatorNotAvailable
	}
	if t, ok := b.node.State().Topics[txnTopic]; ok {
		b.log.Info("created internal topic", "topic", txnTopic, "partitions", len(t.Partitions))
		return t, nil
	}
	return nil, kerr.CoordinatorNotAvailable
}

// partitionOf returns the led and loaded __transaction_state replica
// holding id, loading it on first use. c.mu must be held.
func (c *txnCoordinator) partitionOf(id string) (*partition, *kerr.Error) {
	t, ok := c.b.node.State().Topics[txnTopic]
	if !ok || len(t.Partitions) == 0 {
		return nil, kerr.NotCoordinator
	}
	return c.loadPartition(t, groupPartition(id, len(t.Partitions)))
}

// loadPartition replays partition idx of t if it is led here and not loaded
// yet. c.mu must be held.
func (c *txnCoordinator) loadPartition(t *raft.Topic, idx int32) (*partition, *kerr.Error) {
	if t.Partitions[idx].Leader != c.b.cfg.NodeID || !c.b.mayLead(c.b.node.State()) {
		return nil, kerr.NotCoordinator
	}
	p := c.b.parts.get(txnTopic, idx)
	if p == nil || p.topicID != t.ID {
		return nil, kerr.CoordinatorLoadInProgress
	}
	epoch := t.Partitions[idx].LeaderEpoch
	if l, ok := c.loaded[idx]; ok && l.p == p && l.epoch == epoch {
		return p, nil
	}
	if !p.isLeader(epoch) {
		// The replica has not taken the leadership over yet and may still
		// follow (and truncate to) the previous leader.
		return nil, kerr.CoordinatorLoadInProgress
	}
	// Only this coordinator appends to p, under c.mu: end is the log end
	// the replay reads to.
	end := p.log.EndOffset()
	ms, err := replayTxnPartition(p)
	if err != nil {
		c.b.log.Error("load transaction coordinator partition", "partition", idx, "err", err)
		return nil, kerr.CoordinatorLoadInProgress
	}
	c.unloadPartition(idx, len(t.Partitions))
	for id, m := range ms {
		if old := c.txns[id]; old != nil {
			delete(c.byPID, old.ProducerID)
		}
		c.txns[id] = m
		c.byPID[m.ProducerID] = m
		// Past the high watermark the records were written by an earlier
		// leader: they are this epoch's to commit, not yet committed.
		c.written[id] = stateWrite{w: internalWrite{p: p, last: end - 1, epoch: epoch}, value: m.Value()}
	}
	c.loaded[idx] = loadedPart{p: p, epoch: epoch}
	return p, nil
}

// unloadPartition forgets the ids of __transaction_state partition idx (of
// n): this broker no longer coordinates them, or is about to replay them.
// Ids whose markers are being written stay until that completion ends (it
// then fails to persist and leaves the outcome to the new coordinator).
// c.mu must be held.
func (c *txnCoordinator) unloadPartition(idx int32, n int) {
	delete(c.loaded, idx)
	for id, m := range c.txns {
		if groupPartition(id, n) != idx || c.inflight[id] {
			continue
		}
		delete(c.txns, id)
		delete(c.written, id)
		if c.byPID[m.ProducerID] == m {
			delete(c.byPID, m.ProducerID)
		}
	}
}

// replayTxnPartition reads p from its log start to its log end and returns
// the last state of every id; tombstones remove ids. Records that are not
// transaction metadata are skipped. The whole log counts, as in Kafka's
// coordinator: a new leader's records past its high watermark were written
// by an earlier leader and stay (followers truncate to the leader).
func replayTxnPartition(p *partition) (map[string]*txn.Metadata, error) {
	out := map[string]*txn.Metadata{}
	lg := p.log
	end := lg.EndOffset()
	off := lg.LogStartOffset()
	for off < end {
		sl, err := lg.Read(off, 1<<20, end)
		if err != nil {
			return nil, fmt.Errorf("read %s-%d at %d: %w", txnTopic, p.index, off, err)
		}
		data, err := sl.Bytes()
		sl.Release()
		if err != nil {
			return nil, fmt.Errorf("read %s-%d at %d: %w", txnTopic, p.index, off, err)
		}
		if len(data) == 0 {
			break
		}
		next := off
		for len(data) >= batchHeaderSize {
			h, err := storage.ParseBatchHeader(data)
			if err != nil || h.Size() > len(data) {
				return nil, fmt.Errorf("parse batch of %s-%d at %d: %w", txnTopic, p.index, next, err)
			}
			batch := data[:h.Size()]
			data = data[h.Size():]
			next = h.LastOffset() + 1
			if h.IsControl() {
				continue
			}
			raw, err := storage.Decompress(h.Compression(), batch[batchHeaderSize:])
			if err != nil {
				return nil, fmt.Errorf("decompress batch of %s-%d at %d: %w", txnTopic, p.index, h.BaseOffset, err)
			}
			if _, err := parseRecords(raw, func(_ int, r recordView) error {
				id, m, ok := txn.Decode(r.key, r.value)
				switch {
				case !ok:
				case m == nil:
					delete(out, id)
				default:
					out[id] = m
				}
				return nil
			}); err != nil {
				return nil, fmt.Errorf("records of %s-%d at %d: %w", txnTopic, p.index, h.BaseOffset, err)
			}
		}
		if next <= off {
			break
		}
		off = next
	}
	return out, nil
}

// persist appends m's state to its partition and returns the write to
// wait for, which it also records as m's written state. c.mu must be held.
func (c *txnCoordinator) persist(m *txn.Metadata, now time.Time) (internalWrite, error) {
	p, e := c.partitionOf(m.ID)
	if e != nil {
		delete(c.written, m.ID)
		return internalWrite{}, e
	}
	v := m.Value()
	w, err := appendInternal(p, buildBatch([]record{{key: txn.Key(m.ID), value: v}}, now.UnixMilli()))
	if err != nil {
		delete(c.written, m.ID)
		return internalWrite{}, err
	}
	c.written[m.ID] = stateWrite{w: w, value: v}
	return w, nil
}

// stateWrite is the append of one state of a transactional id: the write
// and the record value it holds (after a replay: the replayed state and the
// log's last record, in the epoch it was replayed in).
type stateWrite struct {
	w     internalWrite
	value []byte
}

// writeOf returns the append holding m's current state; false when m's
// state was changed in memory and not written (its append failed, or a
// request failed between the change and the append). c.mu must be held.
func (c *txnCoordinator) writeOf(m *txn.Metadata) (internalWrite, bool) {
	sw, ok := c.written[m.ID]
	if !ok || !bytes.Equal(sw.value, m.Value()) {
		return internalWrite{}, false
	}
	return sw.w, true
}

// internalWrite is a batch the broker itself appended to a partition it
// leads: its last offset and the leader epoch it was appended in. The
// write is acknowledged only while this broker still leads that epoch
// (waitHW), so the epoch is the append's and never re-read at wait time:
// had leadership moved away and back meanwhile, the new leader may have
// truncated the batch and the current epoch's high watermark would pass
// records that are not it.
type internalWrite struct {
	p     *partition
	last  int64
	epoch int32
}

// noWrite and failedWrite stand for appends that had nothing to write and
// that failed, where a caller passes the outcome on rather than the error
// (the group coordinator's queued answers).
var (
	noWrite     = internalWrite{last: -1}
	failedWrite = internalWrite{last: -2}
)

// durable waits until w is durable through its last offset and the high
// watermark has passed it (replicated to the ISR) in w's epoch.
func (w internalWrite) durable(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if e := w.p.commit(ctx, w.last, w.epoch); e != nil {
		return fmt.Errorf("commit %s-%d through %d in epoch %d: %w", w.p.topic, w.p.index, w.last, w.epoch, e)
	}
	return nil
}

// committedNow reports whether the high watermark has passed w in w's
// epoch already, without waiting (the order of waitHW: high watermark
// first, then leadership).
func (w internalWrite) committedNow() bool {
	hw := w.p.log.HighWatermark()
	return w.p.isLeader(w.epoch) && hw > w.last
}

// replicated waits until the high watermark has passed w in w's epoch:
// the records are committed and may be shown. noWrite is replicated at
// once. Unlike durable it accepts an ISR that shrank below
// min.insync.replicas meanwhile, which fails writes, not reads.
func (w internalWrite) replicated(ctx context.Context) *kerr.Error {
	if w == noWrite {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	switch e := w.p.waitHW(ctx, w.last, w.epoch); e {
	case nil, kerr.NotEnoughReplicasAfterAppend:
		return nil
	default:
		return kerr.CoordinatorNotAvailable
	}
}

// appendInternal appends a batch built by the broker itself to p (offsets
// stamped here). It takes p.mu.
func appendInternal(p *partition, batch []byte) (internalWrite, error) {
	return appendInternalWith(p, batch, nil)
}

// appendInternalWith is appendInternal running before under p.mu first; an
// error from before cancels the append and is returned as is.
func appendInternalWith(p *partition, batch []byte, before func() error) (internalWrite, error) {
	p.mu.Lock()
	// As produceTo: only the leader of the epoch it stamps appends.
	epoch := p.leaderEpoch.Load()
	if !p.isLeader(epoch) {
		p.mu.Unlock()
		return internalWrite{}, fmt.Errorf("append to %s-%d: %w", p.topic, p.index, errNotLeading)
	}
	if before != nil {
		if err := before(); err != nil {
			p.mu.Unlock()
			return internalWrite{}, err
		}
	}
	storage.SetBaseOffset(batch, p.log.EndOffset())
	storage.SetPartitionLeaderEpoch(batch, epoch)
	info, err := p.log.Append(batch)
	if err == nil {
		p.noteAppend(info.LastOffset)
	}
	p.mu.Unlock()
	if err != nil {
		return internalWrite{}, fmt.Errorf("append to %s-%d: %w", p.topic, p.index, err)
	}
	p.appendedReplicated()
	return internalWrite{p: p, last: info.LastOffset, epoch: epoch}, nil
}

// controlBatch encodes one transaction marker as Kafka writes it: a control
// batch of one record whose key is (version 0, type: 0 abort, 1 commit) and
// whose value is an EndTxnMarker.
func controlBatch(pid int64, epoch int16, commit bool, coordinatorEpoch int32, ts int64) []byte {
	key := []byte{0, 0, 0, 0}
	if commit {
		key[3] = 1
	}
	v := kmsg.EndTxnMarker{CoordinatorEpoch: coordinatorEpoch}
	h := storage.BatchHeader{Attributes: 0x30, LastOffsetDelta: 0, BaseTimestamp: ts, MaxTimestamp: ts,
		ProducerID: pid, ProducerEpoch: epoch, BaseSequence: -1, PartitionLeaderEpoch: -1}
	return storage.BuildBatch(h, []storage.Record{{Key: key, Value: v.AppendTo(nil)}})
}

// writeMarker writes one marker into a partition led here and waits until
// it is durable and replicated to the ISR. Markers for __consumer_offsets
// go through the group coordinator, which materializes (or drops) the
// transaction's offsets. A partition that no longer exists needs no
// marker. The errors are the per-partition errors of Kafka's
// WriteTxnMarkers: UNKNOWN_TOPIC_OR_PARTITION when this broker hosts no
// replica, NOT_LEADER_OR_FOLLOWER when it is not the leader.
func (b *Broker) writeMarker(ctx context.Context, topic string, part int32, pid int64, epoch int16, commit bool, coordEpoch int32) *kerr.Error {
	st := b.node.State()
	if t, ok := st.Topics[topic]; !ok || part < 0 || int(part) >= len(t.Partitions) {
		return nil
	}
	p, e := b.lookupPartition(st, topic, part)
	if e != nil {
		if b.parts.get(topic, part) == nil {
			return kerr.UnknownTopicOrPartition
		}
		return e
	}
	if topic == offsetsTopic {
		switch e := b.groups.txnMarker(ctx, part, pid, epoch, commit, coordEpoch); e {
		case kerr.NotCoordinator, kerr.CoordinatorLoadInProgress, kerr.CoordinatorNotAvailable:
			// Leader, but its group coordinator has not taken the
			// partition over yet (or just gave it up): retriable.
			return kerr.NotLeaderForPartition
		default:
			return e
		}
	}
	w, err := appendMarker(p, controlBatch(pid, epoch, commit, coordEpoch, time.Now().UnixMilli()), pid, epoch, coordEpoch)
	if e := markerErr(err); e != nil {
		return e
	}
	if err != nil {
		b.log.Error("write transaction marker", "topic", topic, "partition", part, "err", err)
		return storageErr(err)
	}
	if err := w.durable(ctx); err != nil {
		return storageErr(err)
	}
	return nil
}

// appendMarker appends a transaction marker of producer pid at epoch to p
// (led here) and drops pid's pending verification on p in the same
// critical section, so a batch verified against the transaction this
// marker ends can no longer be appended (txn_verify.go). A marker older
// than the producer's epoch in p is refused with errStaleMarker, as Kafka
// refuses it (INVALID_PRODUCER_EPOCH): a late duplicate of an earlier
// transaction's marker would otherwise end a newer transaction's records
// in p. Likewise a marker from a coordinator epoch older than the last one
// this leader appended for pid is refused with errFencedMarker
// (TRANSACTION_COORDINATOR_FENCED): it comes from a deposed coordinator.
// The log's producer state holds that epoch, so the check survives restarts
// and leader changes. It takes p.mu.
func appendMarker(p *partition, batch []byte, pid int64, epoch int16, coordEpoch int32) (internalWrite, error) {
	return appendInternalWith(p, batch, func() error {
		if e, ok := p.log.Producer(pid); ok {
			if epoch < e.Epoch {
				return errStaleMarker
			}
			if coordEpoch < e.CoordinatorEpoch {
				return errFencedMarker
			}
		}
		delete(p.verifying, pid)
		return nil
	})
}

// markerErr maps appendMarker's refusals to their Kafka errors; nil for
// any other error (and for nil).
func markerErr(err error) *kerr.Error {
	switch {
	case errors.Is(err, errStaleMarker):
		return kerr.InvalidProducerEpoch
	case errors.Is(err, errFencedMarker):
		return kerr.TransactionCoordinatorFenced
	}
	return nil
}

// completion is a prepared transaction whose markers are to be written.
type completion struct {
	id     string
	pid    int64
	epoch  int16
	commit bool
	parts  []txn.TopicPartition
	// coordEpoch is the leader epoch of the id's __transaction_state
	// partition, Kafka's coordinator epoch, written into every marker.
	coordEpoch int32
	// prepare is the append of the prepared state (writeOf); prepareOK
	// is false when no append holds it.
	prepare   internalWrite
	prepareOK bool
}

// prepared describes m's pending markers and marks it inflight. c.mu must
// be held; the caller must call complete.
func (c *txnCoordinator) prepared(m *txn.Metadata) completion {
	c.inflight[m.ID] = true
	cp := completion{id: m.ID, pid: m.ProducerID, epoch: m.Epoch, commit: m.State == txn.PrepareCommit, parts: m.SortedPartitions()}
	cp.prepare, cp.prepareOK = c.writeOf(m)
	if t, ok := c.b.node.State().Topics[txnTopic]; ok && len(t.Partitions) > 0 {
		cp.coordEpoch = t.Partitions[groupPartition(m.ID, len(t.Partitions))].LeaderEpoch
	}
	return cp
}

// complete writes the markers of a prepared transaction to the partitions'
// leaders, here or remote (sendMarkers), and then persists its Complete
// state. The first marker goes out only once the prepared state is
// committed in the epoch it was written in: until then the next leader of
// the id's partition may not hold it and would abort what the markers
// commit. Markers are retried for at most markerRetryWindow; if the
// prepare is not committed by then or some markers are still missing, the
// transaction stays prepared and the tick retries it. It takes c.mu
// itself.
func (c *txnCoordinator) complete(ctx context.Context, cp completion) *kerr.Error {
	mctx, cancel := context.WithTimeout(ctx, markerRetryWindow)
	failed := c.prepareCommitted(mctx, cp)
	if failed == nil {
		failed = c.sendMarkers(mctx, cp)
	}
	cancel()
	c.mu.Lock()
	delete(c.inflight, cp.id)
	m := c.txns[cp.id]
	if failed != nil || m == nil || m.ProducerID != cp.pid || m.Epoch != cp.epoch {
		c.mu.Unlock()
		return failed
	}
	now := time.Now()
	oldPID := m.ProducerID
	if !m.Complete(now.UnixMilli()) {
		c.mu.Unlock()
		return nil
	}
	if m.ProducerID != oldPID {
		delete(c.byPID, oldPID)
		c.byPID[m.ProducerID] = m
	}
	w, err := c.persist(m, now)
	c.mu.Unlock()
	if err == nil {
		err = w.durable(ctx)
	}
	if err != nil {
		c.b.log.Error("persist transaction completion", "transactional_id", cp.id, "err", err)
		return kerr.CoordinatorNotAvailable
	}
	return nil
}

// prepareCommitted waits until cp's prepared state is committed: the high
// watermark of the __transaction_state partition has passed its record in
// the leader epoch it was appended (or replayed) in.
func (c *txnCoordinator) prepareCommitted(ctx context.Context, cp completion) *kerr.Error {
	if !cp.prepareOK {
		return kerr.CoordinatorNotAvailable
	}
	if e := cp.prepare.replicated(ctx); e != nil {
		c.b.log.Warn("transaction prepare not committed; markers held back", "transactional_id", cp.id,
			"partition", cp.prepare.p.index, "offset", cp.prepare.last, "epoch", cp.prepare.epoch, "err", e)
		return e
	}
	return nil
}

// verifyProduce is the partition-level check of KIP-890 part 1 for a
// transactional batch when this broker coordinates id (or id is unknown:
// the batch then must belong to a producer known here): the partition must
// be in the producer's ongoing transaction at this epoch, and while the
// last transaction's markers are being written the answer is the retriable
// CONCURRENT_TRANSACTIONS. The caller holds the data partition's p.mu, so no
// marker can be written to it until the batch is appended.
func (c *txnCoordinator) verifyProduce(id string, pid int64, epoch int16, topic string, part int32) (*kerr.Error, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if id != "" {
		_, _ = c.partitionOf(id) // loads it if this broker just took it over
	}
	m := c.byPID[pid]
	switch {
	case m == nil:
		return kerr.InvalidTxnState, fmt.Sprintf("producer %d has no ongoing transaction", pid)
	case epoch < m.Epoch:
		return kerr.InvalidProducerEpoch, fmt.Sprintf("epoch %d of producer %d is older than its current epoch %d", epoch, pid, m.Epoch)
	case epoch == m.Epoch && (m.State == txn.PrepareCommit || m.State == txn.PrepareAbort || m.State == txn.PrepareEpochFence):
		// The last transaction ended and its markers are being written. A
		// transaction version 2 producer holds the bumped epoch as soon as
		// EndTxn answers and may send its next transaction's first batch
		// now: it must retry once the markers are in, as Kafka's
		// coordinator answers the leader's add, not fail its records.
		return kerr.ConcurrentTransactions, fmt.Sprintf("the last transaction of producer %d is completing", pid)
	case epoch != m.Epoch || !m.Has(txn.TopicPartition{Topic: topic, Partition: part}):
		return kerr.InvalidTxnState, fmt.Sprintf("partition %s-%d is not part of an ongoing transaction of producer %d", topic, part, pid)
	}
	return nil, ""
}

// expireID forgets m when it has been idle, with no transaction open, for
// longer than transactional.id.expiration.ms, writing its tombstone so
// compaction drops it too. c.mu must be held.
func (c *txnCoordinator) expireID(m *txn.Metadata, now time.Time) bool {
	switch m.State {
	case txn.Empty, txn.CompleteCommit, txn.CompleteAbort:
	default:
		return false
	}
	if now.UnixMilli()-m.UpdateMS <= c.b.cfg.TransactionalIDExpiration.Milliseconds() {
		return false
	}
	p, e := c.partitionOf(m.ID)
	if e != nil {
		return false
	}
	w, err := appendInternal(p, buildBatch([]record{{key: txn.Key(m.ID)}}, now.UnixMilli()))
	if err == nil {
		// Rare: syncing under c.mu is acceptable here.
		err = w.durable(context.Background())
	}
	if err != nil {
		c.b.log.Error("expire transactional id", "transactional_id", m.ID, "err", err)
		return false
	}
	delete(c.txns, m.ID)
	delete(c.written, m.ID)
	if c.byPID[m.ProducerID] == m {
		delete(c.byPID, m.ProducerID)
	}
	return true
}

// implicitAdd adds a partition to the producer's transaction on a
// transactional Produce v12+ (transaction version 2) and waits until the
// change is durable. Mismatched ids or epochs, and a transaction whose
// markers are being written, are left to verifyProduce.
func (c *txnCoordinator) implicitAdd(ctx context.Context, pid int64, epoch int16, topic string, part int32) *kerr.Error {
	tp := txn.TopicPartition{Topic: topic, Partition: part}
	now := time.Now()
	c.mu.Lock()
	m := c.byPID[pid]
	if m == nil || m.Epoch != epoch || c.inflight[m.ID] {
		c.mu.Unlock()
		return nil
	}
	if m.Has(tp) {
		// An earlier produce added it. Its append may have failed or
		// not be committed yet (that produce was refused): the batch
		// goes in only once a committed record of the transaction
		// names the partition, or a new coordinator would never end
		// the transaction there.
		if w, ok := c.writeOf(m); ok {
			c.mu.Unlock()
			if w.committedNow() {
				return nil
			}
			return persistedErr(ctx, w, nil)
		}
	} else if e := m.AddPartitions(pid, epoch, []txn.TopicPartition{tp}, now.UnixMilli()); e != nil {
		c.mu.Unlock()
		return e
	}
	m.TV2 = true
	w, err := c.persist(m, now)
	c.mu.Unlock()
	return persistedErr(ctx, w, err)
}

// run loads every led partition (finishing transactions a crash left
// prepared) and aborts timed-out transactions, until ctx ends.
func (c *txnCoordinator) run(ctx context.Context) {
	t := time.NewTicker(coordinatorTick * 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.tick(ctx, time.Now())
		}
	}
}

// tick is one round of run.
func (c *txnCoordinator) tick(ctx context.Context, now time.Time) {
	var todo []completion
	var syncs []internalWrite
	c.mu.Lock()
	if t, ok := c.b.node.State().Topics[txnTopic]; ok {
		for _, pt := range t.Partitions {
			if pt.Leader == c.b.cfg.NodeID {
				_, _ = c.loadPartition(t, pt.Index)
			} else if _, ok := c.loaded[pt.Index]; ok {
				c.unloadPartition(pt.Index, len(t.Partitions))
			}
		}
	}
	checkTimeouts := now.Sub(c.lastAbort) >= c.b.cfg.TransactionAbortCheckInterval
	if checkTimeouts {
		c.lastAbort = now
	}
	ids := make([]string, 0, len(c.txns))
	for id := range c.txns {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		m := c.txns[id]
		if c.inflight[id] {
			continue
		}
		if checkTimeouts && c.expireID(m, now) {
			continue
		}
		if checkTimeouts && m.TimeOut(now.UnixMilli()) {
			c.b.log.Info("aborting timed out transaction", "transactional_id", id, "producer_id", m.ProducerID, "epoch", m.Epoch)
			w, err := c.persist(m, now)
			if err != nil {
				c.b.log.Error("persist transaction timeout", "transactional_id", id, "err", err)
				continue
			}
			syncs = append(syncs, w)
		}
		if m.State == txn.PrepareCommit || m.State == txn.PrepareAbort {
			if _, ok := c.writeOf(m); !ok {
				// The prepared state was never appended: the outcome
				// is decided in memory only. Write it; the completion
				// waits until it is committed.
				if _, err := c.persist(m, now); err != nil {
					c.b.log.Error("persist prepared transaction", "transactional_id", id, "err", err)
					continue
				}
			}
			todo = append(todo, c.prepared(m))
		}
	}
	c.mu.Unlock()
	for _, s := range syncs {
		if err := s.durable(ctx); err != nil {
			c.b.log.Error("sync transaction state", "err", err)
		}
	}
	// Completions run side by side (a leaderless partition of one
	// transaction must not hold up the others), at most
	// tickCompletions at a time; the tick owns them and waits for all.
	sem := make(chan struct{}, tickCompletions)
	var wg sync.WaitGroup
	for _, cp := range todo {
		if ctx.Err() != nil {
			c.mu.Lock()
			delete(c.inflight, cp.id)
			c.mu.Unlock()
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			_ = c.complete(ctx, cp)
		}()
	}
	wg.Wait()
}

// tickCompletions bounds the prepared transactions one tick completes at
// once.
const tickCompletions = 16

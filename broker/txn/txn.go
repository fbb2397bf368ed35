// Package txn is the transaction coordinator's state machine: one Metadata
// per transactional id and the transitions Kafka's TransactionCoordinator
// makes on InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn,
// marker completion and timeout. It does no I/O and reads no clock: callers
// pass the time, persist the returned state (kmsg.TxnMetadataValue records
// of __transaction_state) and write the markers a Prepare state asks for.
//
// Ownership: a Metadata is owned by the caller, which serializes every call
// on it (the broker holds its coordinator lock).
package txn

import (
	"maps"
	"math"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// State is a transaction's state; the values are Kafka's TransactionState
// ids as persisted in TxnMetadataValue.State.
type State int8

// Kafka's transaction states.
const (
	Empty             State = 0
	Ongoing           State = 1
	PrepareCommit     State = 2
	PrepareAbort      State = 3
	CompleteCommit    State = 4
	CompleteAbort     State = 5
	Dead              State = 6
	PrepareEpochFence State = 7
)

// String is the state's name as DescribeTransactions and ListTransactions
// report it.
func (s State) String() string {
	switch s {
	case Empty:
		return "Empty"
	case Ongoing:
		return "Ongoing"
	case PrepareCommit:
		return "PrepareCommit"
	case PrepareAbort:
		return "PrepareAbort"
	case CompleteCommit:
		return "CompleteCommit"
	case CompleteAbort:
		return "CompleteAbort"
	case Dead:
		return "Dead"
	case PrepareEpochFence:
		return "PrepareEpochFence"
	}
	return "Unknown"
}

// maxEpoch is the highest epoch handed out; beyond it a producer gets a new
// id (Kafka: Short.MaxValue - 1, leaving room for a fencing bump).
const maxEpoch = 32766

// TopicPartition names one partition of a transaction.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Metadata is one transactional id's state.
//
// Invariant: Partitions is empty unless State is Ongoing, PrepareCommit or
// PrepareAbort; StartMS is -1 when no transaction is open.
type Metadata struct {
	ID         string
	ProducerID int64
	Epoch      int16
	LastEpoch  int16 // epoch before the last bump, -1 if none (KIP-360 retries)
	// EndEpoch is the epoch a transaction-version-2 EndTxn bumped from, the
	// one its retries carry; -1 when the last bump was anything else (a
	// re-init fences that epoch instead). Not stored in the log: a reload
	// takes the epoch before the current one, as Kafka's coordinator
	// recognizes a retry (current epoch = request epoch + 1) without state,
	// so a client retrying its EndTxn across a coordinator failover is not
	// fenced. A timeout bumps twice under transaction version 2, as Kafka's
	// epoch fence does, so the timed-out epoch is never the one before.
	EndEpoch   int16
	TimeoutMS  int32
	State      State
	Partitions map[TopicPartition]struct{}
	StartMS    int64
	UpdateMS   int64
	// NextProducerID is the id the producer moves to when the running
	// completion ends (transaction version 2 exhausted the epoch); -1 if
	// none.
	NextProducerID int64
	// TV2 records that the client uses transaction version 2 (KIP-890
	// part 2: epoch bump per transaction, implicit partition adds).
	TV2 bool
}

// New returns the Empty state of a fresh transactional id.
func New(id string, pid int64, timeoutMS int32, now int64) *Metadata {
	return &Metadata{ID: id, ProducerID: pid, Epoch: -1, LastEpoch: -1, EndEpoch: -1, TimeoutMS: timeoutMS, State: Empty,
		Partitions: map[TopicPartition]struct{}{}, StartMS: -1, UpdateMS: now, NextProducerID: -1}
}

// SortedPartitions returns the transaction's partitions in order.
func (m *Metadata) SortedPartitions() []TopicPartition {
	out := slices.Collect(maps.Keys(m.Partitions))
	slices.SortFunc(out, func(a, b TopicPartition) int {
		if a.Topic != b.Topic {
			if a.Topic < b.Topic {
				return -1
			}
			return 1
		}
		return int(a.Partition - b.Partition)
	})
	return out
}

// Has reports whether tp is part of the open transaction.
func (m *Metadata) Has(tp TopicPartition) bool {
	_, ok := m.Partitions[tp]
	return ok && m.State == Ongoing
}

// InitResult is what InitProducerID decided.
type InitResult struct {
	Err *kerr.Error
	// Abort is set when an open transaction must first be aborted: the
	// state is now PrepareAbort with a bumped epoch; the caller writes the
	// abort markers and answers CONCURRENT_TRANSACTIONS (Err).
	Abort bool
	// NeedNewID is set when the epoch is exhausted: the caller assigns a
	// fresh producer id with Rotate.
	NeedNewID bool
}

// InitProducerID handles InitProducerId for an existing id. reqPID and
// reqEpoch are the producer's current id and epoch (-1, -1 when it has
// none: a fresh start, which fences every older instance).
func (m *Metadata) InitProducerID(reqPID int64, reqEpoch int16, timeoutMS int32, now int64) InitResult {
	switch m.State {
	case PrepareCommit, PrepareAbort, PrepareEpochFence:
		return InitResult{Err: kerr.ConcurrentTransactions}
	}
	if reqPID >= 0 && m.Epoch >= 0 {
		// KIP-360: a producer re-initializing with its own id and epoch
		// (or retrying the last bump) may continue; anyone else is fenced.
		// An id never initialized (epoch -1) fences nobody: as in Kafka,
		// the producer recovering with an id the coordinator no longer
		// knows (or a client sending zeros on first use) gets the new id.
		switch {
		case reqPID == m.ProducerID && reqEpoch == m.Epoch:
		case reqPID == m.ProducerID && reqEpoch == m.LastEpoch && m.State != Ongoing:
			return InitResult{} // retry of a completed bump: answer the current epoch
		default:
			return InitResult{Err: kerr.ProducerFenced}
		}
	}
	if m.State == Ongoing {
		m.bump()
		m.State = PrepareAbort
		m.UpdateMS = now
		return InitResult{Err: kerr.ConcurrentTransactions, Abort: true}
	}
	m.TimeoutMS = timeoutMS
	m.State = Empty
	m.Partitions = map[TopicPartition]struct{}{}
	m.StartMS = -1
	m.UpdateMS = now
	if m.Epoch >= maxEpoch {
		return InitResult{NeedNewID: true}
	}
	m.bump()
	return InitResult{}
}

// Rotate gives the id a fresh producer id at epoch 0 (epoch exhaustion).
func (m *Metadata) Rotate(pid int64) {
	m.ProducerID, m.Epoch, m.LastEpoch, m.EndEpoch = pid, 0, -1, -1
}

func (m *Metadata) bump() {
	m.LastEpoch, m.EndEpoch = m.Epoch, -1
	m.Epoch++
}

// checkProducer is Kafka's producer id and epoch check for transactional
// requests other than InitProducerId.
func (m *Metadata) checkProducer(pid int64, epoch int16) *kerr.Error {
	if pid != m.ProducerID {
		return kerr.InvalidProducerIDMapping
	}
	if epoch != m.Epoch {
		return kerr.ProducerFenced
	}
	return nil
}

// AddPartitions adds partitions to the transaction, opening it if needed.
// Adding partitions already in an Ongoing transaction changes nothing.
func (m *Metadata) AddPartitions(pid int64, epoch int16, tps []TopicPartition, now int64) *kerr.Error {
	if e := m.checkProducer(pid, epoch); e != nil {
		return e
	}
	switch m.State {
	case PrepareCommit, PrepareAbort, PrepareEpochFence:
		return kerr.ConcurrentTransactions
	case Dead:
		return kerr.InvalidTxnState
	}
	if m.State != Ongoing {
		m.State = Ongoing
		m.Partitions = map[TopicPartition]struct{}{}
		m.StartMS = now
	}
	for _, tp := range tps {
		m.Partitions[tp] = struct{}{}
	}
	m.UpdateMS = now
	return nil
}

// EndResult is what EndTxn decided.
type EndResult struct {
	Err *kerr.Error
	// Prepared is set when the transaction moved to PrepareCommit or
	// PrepareAbort: the caller writes the markers, then calls Complete.
	Prepared bool
}

// EndTxn handles EndTxn. Retries of a completed end with the same outcome
// succeed, as Kafka's do.
func (m *Metadata) EndTxn(pid int64, epoch int16, commit bool, now int64) EndResult {
	if e := m.checkProducer(pid, epoch); e != nil {
		return EndResult{Err: e}
	}
	switch m.State {
	case Ongoing:
		m.State = PrepareAbort
		if commit {
			m.State = PrepareCommit
		}
		m.UpdateMS = now
		return EndResult{Prepared: true}
	case CompleteCommit:
		if commit {
			return EndResult{}
		}
	case CompleteAbort:
		if !commit {
			return EndResult{}
		}
	case PrepareCommit:
		if commit {
			return EndResult{Err: kerr.ConcurrentTransactions}
		}
	case PrepareAbort:
		if !commit {
			return EndResult{Err: kerr.ConcurrentTransactions}
		}
	}
	return EndResult{Err: kerr.InvalidTxnState}
}

// EndResultV2 is what EndTxnV2 decided.
type EndResultV2 struct {
	EndResult
	// NeedNewID is set when the bump reached the last epoch: the caller
	// sets NextProducerID, which the producer gets once this completes.
	NeedNewID bool
}

// EndTxnV2 handles EndTxn v5+ (transaction version 2, KIP-890 part 2):
// every end bumps the epoch, so the markers carry the new epoch and fence
// any late write of the transaction; aborting with no open transaction is
// legal (it only bumps the epoch). A request with the epoch before the bump
// is a retry of the end that bumped it, answered as Kafka's endTransaction
// does (retryOnEpochBump): the same result succeeds once complete and is
// CONCURRENT_TRANSACTIONS while its markers are pending; the other result is
// INVALID_TXN_STATE, not PRODUCER_FENCED, since that epoch is still valid.
func (m *Metadata) EndTxnV2(pid int64, epoch int16, commit bool, now int64) EndResultV2 {
	if pid == m.ProducerID && epoch == m.EndEpoch && epoch >= 0 {
		switch m.State {
		case CompleteCommit, CompleteAbort:
			if commit == (m.State == CompleteCommit) {
				return EndResultV2{}
			}
			return EndResultV2{EndResult: EndResult{Err: kerr.InvalidTxnState}}
		case PrepareCommit, PrepareAbort:
			if commit == (m.State == PrepareCommit) {
				return EndResultV2{EndResult: EndResult{Err: kerr.ConcurrentTransactions}}
			}
			return EndResultV2{EndResult: EndResult{Err: kerr.InvalidTxnState}}
		}
	}
	if e := m.checkProducer(pid, epoch); e != nil {
		return EndResultV2{EndResult: EndResult{Err: e}}
	}
	m.TV2 = true
	switch m.State {
	case Ongoing:
		m.State = PrepareAbort
		if commit {
			m.State = PrepareCommit
		}
	case Empty, CompleteCommit, CompleteAbort:
		if commit {
			return EndResultV2{EndResult: EndResult{Err: kerr.InvalidTxnState}}
		}
		m.State = PrepareAbort
		m.Partitions = map[TopicPartition]struct{}{}
	case PrepareCommit, PrepareAbort, PrepareEpochFence:
		return EndResultV2{EndResult: EndResult{Err: kerr.ConcurrentTransactions}}
	default:
		return EndResultV2{EndResult: EndResult{Err: kerr.InvalidTxnState}}
	}
	m.bump()
	m.EndEpoch = m.LastEpoch
	m.UpdateMS = now
	return EndResultV2{EndResult: EndResult{Prepared: true}, NeedNewID: m.Epoch >= maxEpoch}
}

// Complete finishes a prepared transaction once every marker is written.
// It reports whether the state changed. A pending NextProducerID takes
// effect here, at epoch 0.
func (m *Metadata) Complete(now int64) bool {
	if m.NextProducerID >= 0 && (m.State == PrepareCommit || m.State == PrepareAbort) {
		defer func() {
			m.ProducerID, m.Epoch, m.LastEpoch, m.EndEpoch, m.NextProducerID = m.NextProducerID, 0, -1, -1, -1
		}()
	}
	switch m.State {
	case PrepareCommit:
		m.State = CompleteCommit
	case PrepareAbort:
		m.State = CompleteAbort
	default:
		return false
	}
	m.Partitions = map[TopicPartition]struct{}{}
	m.StartMS = -1
	m.UpdateMS = now
	return true
}

// Expired reports whether the open transaction outlived its timeout.
func (m *Metadata) Expired(now int64) bool {
	return m.State == Ongoing && m.StartMS >= 0 && now-m.StartMS > int64(m.TimeoutMS)
}

// TimeOut aborts an expired transaction: the epoch is bumped so the zombie
// producer is fenced (its next request sees PRODUCER_FENCED) and the state
// becomes PrepareAbort; the caller writes the abort markers.
func (m *Metadata) TimeOut(now int64) bool {
	if !m.Expired(now) {
		return false
	}
	m.bump()
	if m.TV2 && m.Epoch < math.MaxInt16 {
		// Kafka fences (one bump) and then ends the transaction as a
		// version-2 end does (another): the zombie's epoch is two behind.
		m.bump()
	}
	m.State = PrepareAbort
	m.UpdateMS = now
	return true
}

// Key is the __transaction_state key of a transactional id.
func Key(id string) []byte {
	k := kmsg.NewTxnMetadataKey()
	k.TransactionalID = id
	return k.AppendTo(nil)
}

// Value encodes m as Kafka's TxnMetadataValue (version 0).
func (m *Metadata) Value() []byte {
	v := kmsg.NewTxnMetadataValue()
	if m.TV2 || m.NextProducerID >= 0 {
		// Version 1 carries the transaction version and the next
		// producer id as tagged fields.
		v.Version = 1
		v.NextProducerID, v.ClientTransactionVersion = m.NextProducerID, 0
		if m.TV2 {
			v.ClientTransactionVersion = 2
		}
	}
	v.ProducerID, v.ProducerEpoch, v.TimeoutMillis = m.ProducerID, m.Epoch, m.TimeoutMS
	v.State = kmsg.TransactionState(m.State)
	v.LastUpdateTimestamp, v.StartTimestamp = m.UpdateMS, m.StartMS
	var cur *kmsg.TxnMetadataValueTopic
	for _, tp := range m.SortedPartitions() {
		if cur == nil || cur.Topic != tp.Topic {
			v.Topics = append(v.Topics, kmsg.NewTxnMetadataValueTopic())
			cur = &v.Topics[len(v.Topics)-1]
			cur.Topic = tp.Topic
		}
		cur.Partitions = append(cur.Partitions, tp.Partition)
	}
	return v.AppendTo(nil)
}

// Decode parses a __transaction_state record. A nil value (tombstone)
// returns a nil Metadata; ok is false for records that are not
// transaction metadata.
func Decode(key, value []byte) (id string, m *Metadata, ok bool) {
	var k kmsg.TxnMetadataKey
	if len(key) < 2 || k.ReadFrom(key) != nil || k.Version != 0 {
		return "", nil, false
	}
	if value == nil {
		return k.TransactionalID, nil, true
	}
	var v kmsg.TxnMetadataValue
	if v.ReadFrom(value) != nil {
		return "", nil, false
	}
	m = &Metadata{ID: k.TransactionalID, ProducerID: v.ProducerID, Epoch: v.ProducerEpoch, LastEpoch: -1, EndEpoch: -1,
		TimeoutMS: v.TimeoutMillis, State: State(v.State), Partitions: map[TopicPartition]struct{}{},
		StartMS: v.StartTimestamp, UpdateMS: v.LastUpdateTimestamp, NextProducerID: -1}
	if v.Version >= 1 {
		m.NextProducerID, m.TV2 = v.NextProducerID, v.ClientTransactionVersion >= 2
	}
	switch m.State {
	case PrepareCommit, PrepareAbort, CompleteCommit, CompleteAbort:
		if m.TV2 && m.Epoch > 0 {
			m.EndEpoch = m.Epoch - 1
		}
	}
	for _, t := range v.Topics {
		for _, p := range t.Partitions {
			m.Partitions[TopicPartition{t.Topic, p}] = struct{}{}
		}
	}
	return k.TransactionalID, m, true
}

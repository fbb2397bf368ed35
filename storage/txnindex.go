package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// Kafka's transaction index (<base>.txnindex): one 34-byte entry per aborted transaction whose ABORT
// marker lies in the segment: int16 version (0), int64 producer id, int64 first offset, int64 last
// offset (the marker), int64 last stable offset after the abort.
const (
	txnIndexSuffix    = ".txnindex"
	txnEntrySize      = 34
	txnIndexVersion   = 0
	controlKeyMinSize = 4
)

// AbortedTxn is an aborted transaction, as a read_committed fetch reports it: the consumer drops the
// producer's records from FirstOffset until it sees the marker at LastOffset.
type AbortedTxn struct {
	ProducerID       int64
	FirstOffset      int64
	LastOffset       int64 // offset of the ABORT marker
	LastStableOffset int64 // the partition's last stable offset once the abort was written
}

func (s *segment) txnIndexPath() string {
	return filepath.Join(filepath.Dir(s.logPath), segmentName(s.base)+txnIndexSuffix)
}

func encodeTxnEntries(es []AbortedTxn) []byte {
	b := make([]byte, 0, len(es)*txnEntrySize)
	for _, e := range es {
		b = binary.BigEndian.AppendUint16(b, txnIndexVersion)
		b = binary.BigEndian.AppendUint64(b, uint64(e.ProducerID))
		b = binary.BigEndian.AppendUint64(b, uint64(e.FirstOffset))
		b = binary.BigEndian.AppendUint64(b, uint64(e.LastOffset))
		b = binary.BigEndian.AppendUint64(b, uint64(e.LastStableOffset))
	}
	return b
}

// decodeTxnIndex parses a .txnindex file.
func decodeTxnIndex(b []byte) ([]AbortedTxn, error) {
	if len(b)%txnEntrySize != 0 {
		return nil, fmt.Errorf("%w: transaction index size %d not a multiple of %d", ErrCorrupt, len(b), txnEntrySize)
	}
	out := make([]AbortedTxn, 0, len(b)/txnEntrySize)
	for i := 0; i < len(b); i += txnEntrySize {
		if v := binary.BigEndian.Uint16(b[i:]); v != txnIndexVersion {
			return nil, fmt.Errorf("%w: transaction index entry version %d", ErrCorrupt, v)
		}
		e := AbortedTxn{
			ProducerID:       int64(binary.BigEndian.Uint64(b[i+2:])),
			FirstOffset:      int64(binary.BigEndian.Uint64(b[i+10:])),
			LastOffset:       int64(binary.BigEndian.Uint64(b[i+18:])),
			LastStableOffset: int64(binary.BigEndian.Uint64(b[i+26:])),
		}
		if e.FirstOffset < 0 || e.LastOffset < e.FirstOffset {
			return nil, fmt.Errorf("%w: transaction index entry [%d, %d]", ErrCorrupt, e.FirstOffset, e.LastOffset)
		}
		out = append(out, e)
	}
	return out, nil
}

// abortedTxns returns the segment's aborted transactions, loading the file on first use. A missing
// file is an empty index; an unreadable one is reported.
func (s *segment) abortedTxns() ([]AbortedTxn, error) {
	if p := s.txn.Load(); p != nil {
		return *p, nil
	}
	s.idxMu.Lock()
	defer s.idxMu.Unlock()
	if p := s.txn.Load(); p != nil {
		return *p, nil
	}
	b, err := os.ReadFile(s.txnIndexPath())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read transaction index of %s: %w", s.logPath, err)
	}
	es, err := decodeTxnIndex(b)
	if err != nil {
		return nil, fmt.Errorf("transaction index of %s: %w", s.logPath, err)
	}
	s.txn.Store(&es)
	return es, nil
}

// addAbortedTxns appends entries to the segment's transaction index (file and memory). Log.mu held.
func (s *segment) addAbortedTxns(es []AbortedTxn) error {
	cur, err := s.abortedTxns()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(s.txnIndexPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open transaction index: %w", err)
	}
	_, werr := f.Write(encodeTxnEntries(es))
	cerr := f.Close()
	if werr != nil || cerr != nil {
		return fmt.Errorf("write transaction index of %s: %w", s.logPath, errors.Join(werr, cerr))
	}
	next := append(slices.Clip(cur), es...)
	s.txn.Store(&next)
	return nil
}

// setAbortedTxns replaces the segment's transaction index (recovery, truncation). Log.mu held.
func (s *segment) setAbortedTxns(es []AbortedTxn) error {
	p := s.txnIndexPath()
	if len(es) == 0 {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove transaction index: %w", err)
		}
	} else if err := os.WriteFile(p, encodeTxnEntries(es), 0o644); err != nil {
		return fmt.Errorf("write transaction index: %w", err)
	}
	es = slices.Clip(es)
	s.txn.Store(&es)
	return nil
}

// controlType returns the type of a control batch's marker (controlAbort, controlCommit) from its
// first record's key.
func controlType(h BatchHeader, batch []byte) (int16, error) {
	typ, _, err := controlMarker(h, batch)
	return typ, err
}

// controlMarker returns a control batch's marker type from its first record's key and the transaction
// coordinator epoch from its value (version int16, coordinator epoch int32; Kafka's EndTxnMarker). A
// value too short to hold the epoch gives -1: the key alone decides what the marker does.
func controlMarker(h BatchHeader, batch []byte) (typ int16, coordinatorEpoch int32, err error) {
	recs, err := batchRecords(h, batch)
	if err != nil {
		return 0, -1, err
	}
	if len(recs) == 0 || len(recs[0].Key) < controlKeyMinSize {
		return 0, -1, fmt.Errorf("%w: control batch at %d without a marker key", ErrInvalidBatch, h.BaseOffset)
	}
	coordinatorEpoch = -1
	if v := recs[0].Value; len(v) >= 6 {
		coordinatorEpoch = int32(binary.BigEndian.Uint32(v[2:]))
	}
	return int16(binary.BigEndian.Uint16(recs[0].Key[2:])), coordinatorEpoch, nil
}

// applyBatch updates producer state with one batch and returns the aborted transaction it completes,
// if it is an ABORT marker. batch is needed only for control batches (nil otherwise is fine).
// Caller holds prod.mu for writing.
func (p *producerState) applyBatch(h BatchHeader, batch []byte) (AbortedTxn, bool, error) {
	if h.ProducerID < 0 || !h.IsControl() {
		p.update(h)
		return AbortedTxn{}, false, nil
	}
	typ, coordinatorEpoch, err := controlMarker(h, batch)
	if err != nil {
		p.update(h)
		return AbortedTxn{}, false, err
	}
	var ab AbortedTxn
	aborted := false
	if typ == controlAbort {
		first := h.BaseOffset
		if e := p.m[h.ProducerID]; e != nil && e.CurrentTxnFirstOffset >= 0 {
			first = e.CurrentTxnFirstOffset
		}
		ab = AbortedTxn{ProducerID: h.ProducerID, FirstOffset: first, LastOffset: h.BaseOffset}
		aborted = true
	}
	p.update(h)
	if coordinatorEpoch >= 0 {
		p.m[h.ProducerID].CoordinatorEpoch = coordinatorEpoch
	}
	if aborted {
		// Last stable offset once this abort is written: the first offset still in an open transaction.
		ab.LastStableOffset = h.LastOffset() + 1
		for _, e := range p.m {
			if e.CurrentTxnFirstOffset >= 0 {
				ab.LastStableOffset = min(ab.LastStableOffset, e.CurrentTxnFirstOffset)
			}
		}
	}
	return ab, aborted, nil
}

// firstUnstable is the smallest first offset of an open transaction.
func (p *producerState) firstUnstable() (int64, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	first, ok := int64(0), false
	for _, e := range p.m {
		if e.CurrentTxnFirstOffset >= 0 && (!ok || e.CurrentTxnFirstOffset < first) {
			first, ok = e.CurrentTxnFirstOffset, true
		}
	}
	return first, ok
}

// FirstUnstableOffset returns the first offset of the oldest open transaction; ok is false when no
// transaction is open. The last stable offset is min(this, high watermark).
func (l *Log) FirstUnstableOffset() (offset int64, ok bool) { return l.prod.firstUnstable() }

// AbortedTransactions lists the aborted transactions that overlap [from, upTo): those a read_committed
// fetch of that range must report (upTo is normally the last stable offset). Like Kafka, it reads the
// transaction indexes of the segments from the one holding from onwards, stopping at the first abort
// written when the last stable offset had already reached upTo: every transaction touching the range
// was complete by then.
func (l *Log) AbortedTransactions(from, upTo int64) ([]AbortedTxn, error) {
	if l.closed.Load() {
		return nil, ErrClosed
	}
	var out []AbortedTxn
	segs := *l.segs.Load()
	for i := segmentFor(segs, from); i < len(segs); i++ {
		es, err := segs[i].abortedTxns()
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			if e.LastOffset >= from && e.FirstOffset < upTo {
				out = append(out, e)
			}
			if e.LastStableOffset >= upTo {
				return out, nil
			}
		}
	}
	return out, nil
}

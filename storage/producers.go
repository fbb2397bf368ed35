package storage

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"maps"
	"math"
	"slices"
	"sync"
)

// maxProducerBatches is how many recent batches per producer are remembered for duplicate detection
// (Kafka keeps 5, matching max.in.flight.requests.per.connection for idempotent producers).
const maxProducerBatches = 5

// ProducerBatch describes one appended batch of an idempotent producer.
type ProducerBatch struct {
	FirstSeq, LastSeq       int32
	FirstOffset, LastOffset int64
	Timestamp               int64 // the batch's max timestamp
}

// ProducerEntry is the idempotence/transaction state of one producer id in this partition.
type ProducerEntry struct {
	ProducerID            int64
	Epoch                 int16
	Batches               []ProducerBatch // last <= 5 batches of the current epoch, oldest first
	LastTimestamp         int64
	CurrentTxnFirstOffset int64 // first offset of the open transaction, -1 when none
	// CoordinatorEpoch is the transaction coordinator epoch carried by the producer's last
	// transaction marker, -1 before any. A marker from an older coordinator epoch comes from a
	// deposed coordinator (Kafka's TRANSACTION_COORDINATOR_FENCED); keeping it here means the
	// check survives restarts (snapshots, log replay) and leader changes (followers apply the
	// same markers).
	CoordinatorEpoch int32
}

func (e ProducerEntry) clone() ProducerEntry {
	e.Batches = slices.Clone(e.Batches)
	return e
}

// producerState maps producer ids to their entries.
type producerState struct {
	mu sync.RWMutex // guards m; mutations also hold Log.mu
	m  map[int64]*ProducerEntry
}

// lastSeq computes the sequence of a batch's last record; sequences wrap from MaxInt32 to 0.
func lastSeq(base int32, delta int32) int32 {
	if base > math.MaxInt32-delta {
		return delta - (math.MaxInt32 - base) - 1
	}
	return base + delta
}

// update applies one appended batch. Caller holds mu for writing.
func (p *producerState) update(h BatchHeader) {
	if h.ProducerID < 0 {
		return
	}
	e := p.m[h.ProducerID]
	if e == nil {
		e = &ProducerEntry{ProducerID: h.ProducerID, Epoch: h.ProducerEpoch, CurrentTxnFirstOffset: -1, CoordinatorEpoch: -1}
		p.m[h.ProducerID] = e
	}
	if h.ProducerEpoch > e.Epoch {
		e.Epoch = h.ProducerEpoch
		e.Batches = nil
	}
	e.LastTimestamp = h.MaxTimestamp
	if h.IsControl() {
		e.CurrentTxnFirstOffset = -1
		return
	}
	if h.IsTransactional() && e.CurrentTxnFirstOffset < 0 {
		e.CurrentTxnFirstOffset = h.BaseOffset
	}
	if h.BaseSequence < 0 {
		return
	}
	if len(e.Batches) == maxProducerBatches {
		e.Batches = append(e.Batches[:0], e.Batches[1:]...)
	}
	e.Batches = append(e.Batches, ProducerBatch{
		FirstSeq: h.BaseSequence, LastSeq: lastSeq(h.BaseSequence, h.LastOffsetDelta),
		FirstOffset: h.BaseOffset, LastOffset: h.LastOffset(), Timestamp: h.MaxTimestamp,
	})
}

func (p *producerState) get(pid int64) (ProducerEntry, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	e, ok := p.m[pid]
	if !ok {
		return ProducerEntry{}, false
	}
	return e.clone(), true
}

func (p *producerState) all() []ProducerEntry {
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := make([]ProducerEntry, 0, len(p.m))
	for _, k := range slices.Sorted(maps.Keys(p.m)) {
		out = append(out, p.m[k].clone())
	}
	return out
}

// Snapshot file format (ours; Kafka's tools do not read producer snapshots):
//
//	magic "STPS" | version u16 = 2 | crc32c u32 of everything after it | offset i64 | count u32 |
//	count × (pid i64 | epoch i16 | lastTs i64 | txnFirst i64 | coordEpoch i32 | n u8 |
//	n × (firstSeq i32 | lastSeq i32 | firstOff i64 | lastOff i64 | ts i64))
//
// Version 1, written before coordinator epochs were kept, lacks coordEpoch; it still decodes, with -1.
const (
	snapshotMagic   = "STPS"
	snapshotVersion = 2
)

func encodeSnapshot(offset int64, entries []ProducerEntry) []byte {
	b := make([]byte, 0, 22+len(entries)*64)
	b = append(b, snapshotMagic...)
	b = binary.BigEndian.AppendUint16(b, snapshotVersion)
	b = binary.BigEndian.AppendUint32(b, 0) // crc placeholder
	b = binary.BigEndian.AppendUint64(b, uint64(offset))
	b = binary.BigEndian.AppendUint32(b, uint32(len(entries)))
	for _, e := range entries {
		b = binary.BigEndian.AppendUint64(b, uint64(e.ProducerID))
		b = binary.BigEndian.AppendUint16(b, uint16(e.Epoch))
		b = binary.BigEndian.AppendUint64(b, uint64(e.LastTimestamp))
		b = binary.BigEndian.AppendUint64(b, uint64(e.CurrentTxnFirstOffset))
		b = binary.BigEndian.AppendUint32(b, uint32(e.CoordinatorEpoch))
		b = append(b, byte(len(e.Batches)))
		for _, pb := range e.Batches {
			b = binary.BigEndian.AppendUint32(b, uint32(pb.FirstSeq))
			b = binary.BigEndian.AppendUint32(b, uint32(pb.LastSeq))
			b = binary.BigEndian.AppendUint64(b, uint64(pb.FirstOffset))
			b = binary.BigEndian.AppendUint64(b, uint64(pb.LastOffset))
			b = binary.BigEndian.AppendUint64(b, uint64(pb.Timestamp))
		}
	}
	binary.BigEndian.PutUint32(b[6:], crc32.Checksum(b[10:], castagnoli))
	return b
}

// decodeSnapshot parses a producer snapshot, rejecting anything malformed.
func decodeSnapshot(b []byte) (int64, []ProducerEntry, error) {
	bad := func(what string) (int64, []ProducerEntry, error) {
		return 0, nil, fmt.Errorf("%w: producer snapshot: %s", ErrCorrupt, what)
	}
	if len(b) < 22 || string(b[:4]) != snapshotMagic {
		return bad("header")
	}
	version := binary.BigEndian.Uint16(b[4:])
	// fixed is an entry's size before its batches.
	fixed := 27
	switch version {
	case 1:
	case 2:
		fixed = 31
	default:
		return bad("version")
	}
	if binary.BigEndian.Uint32(b[6:]) != crc32.Checksum(b[10:], castagnoli) {
		return bad("crc")
	}
	off := int64(binary.BigEndian.Uint64(b[10:]))
	n := binary.BigEndian.Uint32(b[18:])
	p := b[22:]
	if uint64(n)*uint64(fixed) > uint64(len(p)) {
		return bad("count")
	}
	out := make([]ProducerEntry, 0, n)
	for range n {
		if len(p) < fixed {
			return bad("entry")
		}
		e := ProducerEntry{
			ProducerID:            int64(binary.BigEndian.Uint64(p)),
			Epoch:                 int16(binary.BigEndian.Uint16(p[8:])),
			LastTimestamp:         int64(binary.BigEndian.Uint64(p[10:])),
			CurrentTxnFirstOffset: int64(binary.BigEndian.Uint64(p[18:])),
			CoordinatorEpoch:      -1,
		}
		if version >= 2 {
			e.CoordinatorEpoch = int32(binary.BigEndian.Uint32(p[26:]))
		}
		nb := int(p[fixed-1])
		p = p[fixed:]
		if nb > maxProducerBatches || len(p) < nb*32 {
			return bad("batches")
		}
		for range nb {
			e.Batches = append(e.Batches, ProducerBatch{
				FirstSeq:    int32(binary.BigEndian.Uint32(p)),
				LastSeq:     int32(binary.BigEndian.Uint32(p[4:])),
				FirstOffset: int64(binary.BigEndian.Uint64(p[8:])),
				LastOffset:  int64(binary.BigEndian.Uint64(p[16:])),
				Timestamp:   int64(binary.BigEndian.Uint64(p[24:])),
			})
			p = p[32:]
		}
		out = append(out, e)
	}
	if len(p) != 0 {
		return bad("trailing bytes")
	}
	return off, out, nil
}

// expire forgets producers idle since before limit (ms) with no open transaction, as Kafka does after
// producer.id.expiration.ms. It returns how many were removed.
func (p *producerState) expire(limit int64) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for pid, e := range p.m {
		if e.CurrentTxnFirstOffset < 0 && e.LastTimestamp < limit {
			delete(p.m, pid)
			n++
		}
	}
	return n
}

package storage

import (
	"fmt"
	"sort"
)

// Read returns whole batches starting with the one containing offset, only batches whose last offset
// is below upTo (the high watermark or last stable offset), up to maxBytes but at least one batch if any
// qualifies. The batches come from one segment, as one file section, so the broker can sendfile them.
// offset < LogStartOffset or > EndOffset gives ErrOffsetOutOfRange; offset == EndOffset an empty Slice.
// The caller must Release the Slice.
func (l *Log) Read(offset int64, maxBytes int, upTo int64) (*Slice, error) {
	if l.closed.Load() {
		return nil, ErrClosed
	}
	// Load order: leo first, so every segment size loaded afterwards covers it.
	leo := l.leo.Load()
	if offset < l.logStart.Load() || offset > leo {
		return nil, fmt.Errorf("read offset %d (log start %d, end %d): %w", offset, l.logStart.Load(), leo, ErrOffsetOutOfRange)
	}
	if offset == leo || upTo <= offset {
		return &Slice{}, nil
	}
	interval := l.config().IndexIntervalBytes
	for attempt := 0; attempt < 10; attempt++ {
		segs := *l.segs.Load()
		i := segmentFor(segs, offset)
		retry := false
		for ; i < len(segs); i++ {
			s := segs[i]
			if !s.ref.acquire() {
				retry = true // deleted or replaced meanwhile; reload the list
				break
			}
			sl, found, err := l.readSegment(s, offset, maxBytes, upTo, interval)
			if err != nil || found {
				if err != nil {
					s.ref.release()
				}
				return sl, err
			}
			s.ref.release()
			if sl != nil {
				return &Slice{}, nil // the next batch is at or above upTo
			}
		}
		if !retry {
			return &Slice{}, nil
		}
	}
	return nil, fmt.Errorf("read offset %d: segments kept changing", offset)
}

// segmentFor returns the index of the segment that would hold offset (the last with base <= offset).
func segmentFor(segs []*segment, offset int64) int {
	lo, hi := 0, len(segs)
	for lo < hi {
		m := (lo + hi) / 2
		if segs[m].base <= offset {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return max(lo-1, 0)
}

// readSegment builds the Slice within one segment, which the caller holds a reference on. found is
// false when no batch in the segment has a last offset >= offset; then a non-nil empty Slice means the
// search must stop (the batch found lies at or above upTo). On found, the reference passes to the Slice.
func (l *Log) readSegment(s *segment, offset int64, maxBytes int, upTo int64, interval int) (*Slice, bool, error) {
	size := s.size.Load()
	pos, h, found, err := s.findBatch(offset, size, interval)
	if err != nil {
		if s.size.Load() < size {
			// Truncated while we looked (only possible above the high watermark): the bytes are gone,
			// which is not corruption.
			return nil, false, fmt.Errorf("read offset %d: truncated concurrently: %w", offset, ErrOffsetOutOfRange)
		}
		return nil, false, fmt.Errorf("read offset %d: %w", offset, err)
	}
	if !found {
		return nil, false, nil
	}
	if h.LastOffset() >= upTo {
		return &Slice{}, false, nil
	}
	end := pos + int64(h.Size())
	end = s.skipIndexed(pos, end, size, maxBytes, upTo, interval)
	for end < size {
		nh, err := s.readHeaderAt(end, size)
		if err != nil {
			break // serve what is valid; the next read reports the corruption
		}
		if nh.LastOffset() >= upTo || end-pos+int64(nh.Size()) > int64(maxBytes) {
			break
		}
		end += int64(nh.Size())
	}
	return &Slice{ref: s.ref, file: s.logPath, pos: pos, n: int(end - pos)}, true, nil
}

// skipIndexed moves end, the end of whole batches read from pos, as far as the offset index proves
// safe, so the header-by-header walk that follows reads at most an index interval of batches instead
// of every batch up to maxBytes (a 1 MiB fetch of 16 KiB batches was 64 preads). Every index entry
// is a batch start; an entry whose batch's last offset is below upTo and whose position is within
// maxBytes of pos and within size ends a run of whole, readable batches.
func (s *segment) skipIndexed(pos, end, size int64, maxBytes int, upTo int64, interval int) int64 {
	idx, err := s.index(interval)
	if err != nil {
		return end // the walk reads the headers instead
	}
	bound := min(pos+int64(maxBytes), size)
	// Entries are ordered by both position and offset: find the last one that satisfies both limits.
	j := sort.Search(len(idx.off), func(i int) bool {
		e := idx.off[i]
		return int64(e.pos) > bound || s.base+int64(e.rel) >= upTo
	}) - 1
	if j >= 0 && int64(idx.off[j].pos) > end {
		return int64(idx.off[j].pos)
	}
	return end
}

// OffsetForTimestamp finds the first batch (at or above the log start) whose max timestamp is >= ts and
// returns its base offset and bytes; the caller refines to the record. found is false when no batch
// qualifies.
func (l *Log) OffsetForTimestamp(ts int64) (int64, []byte, bool, error) {
	if l.closed.Load() {
		return 0, nil, false, ErrClosed
	}
	interval := l.config().IndexIntervalBytes
	logStart := l.logStart.Load()
	segs := *l.segs.Load()
	for i, s := range segs {
		if i+1 < len(segs) && segs[i+1].base <= logStart {
			continue
		}
		if !s.ref.acquire() {
			continue
		}
		off, b, found, err := func() (int64, []byte, bool, error) {
			defer s.ref.release()
			idx, err := s.index(interval)
			if err != nil {
				return 0, nil, false, err
			}
			if idx.maxTs < ts {
				return 0, nil, false, nil
			}
			size := s.size.Load()
			pos, err := s.timePosition(ts, size, interval)
			if err != nil {
				return 0, nil, false, err
			}
			for pos < size {
				h, err := s.readHeaderAt(pos, size)
				if err != nil {
					return 0, nil, false, fmt.Errorf("offset for timestamp %d: %w", ts, err)
				}
				if h.MaxTimestamp >= ts && h.LastOffset() >= logStart {
					b := make([]byte, h.Size())
					if _, err := s.ref.f.ReadAt(b, pos); err != nil {
						return 0, nil, false, fmt.Errorf("read %s at %d: %w", s.logPath, pos, err)
					}
					return h.BaseOffset, b, true, nil
				}
				pos += int64(h.Size())
			}
			return 0, nil, false, nil
		}()
		if err != nil || found {
			return off, b, found, err
		}
	}
	return 0, nil, false, nil
}

// MaxTimestamp returns the largest batch max timestamp in the log and the base offset of the batch
// holding it (the first such batch); (-1, -1) for an empty log.
func (l *Log) MaxTimestamp() (int64, int64, error) {
	if l.closed.Load() {
		return 0, 0, ErrClosed
	}
	interval := l.config().IndexIntervalBytes
	logStart := l.logStart.Load()
	var best *segment
	bestTs, bestOff := int64(-1), int64(-1)
	segs := *l.segs.Load()
	for i, s := range segs {
		if i+1 < len(segs) && segs[i+1].base <= logStart {
			continue
		}
		idx, err := s.index(interval)
		if err != nil {
			return 0, 0, err
		}
		if idx.maxTsOff >= 0 && (best == nil || idx.maxTs > bestTs) {
			best, bestTs, bestOff = s, idx.maxTs, idx.maxTsOff
		}
	}
	if best == nil || !best.ref.acquire() {
		return -1, -1, nil
	}
	defer best.ref.release()
	_, h, found, err := best.findBatch(bestOff, best.size.Load(), interval)
	if err != nil {
		return 0, 0, err
	}
	if !found {
		return -1, -1, nil
	}
	return bestTs, h.BaseOffset, nil
}

// AssignEpoch records that leader epoch epoch starts at startOffset (a new leader calls it when it
// takes over; Append also learns epochs from the batches' partition leader epoch).
func (l *Log) AssignEpoch(epoch int32, startOffset int64) error {
	if epoch < 0 || startOffset < 0 {
		return fmt.Errorf("assign epoch %d at %d: %w", epoch, startOffset, ErrOffsetOutOfRange)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Load() {
		return ErrClosed
	}
	if !l.epochs.assign(epoch, startOffset) {
		return nil
	}
	return l.epochs.persist(l.dir)
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch with Kafka's semantics (KIP-101/279): for the latest
// epoch, the log end offset; for an older one, the start offset of the next higher epoch, paired with
// the largest epoch <= the requested one; (-1, -1) if the requested epoch is unknown and above all.
func (l *Log) EndOffsetForEpoch(epoch int32) (int32, int64) {
	return l.epochs.endOffsetFor(epoch, l.leo.Load())
}

// LatestEpoch is the newest leader epoch in the lineage, -1 when none.
func (l *Log) LatestEpoch() int32 { return l.epochs.latest() }

// Producer returns the state of one producer id (a copy).
func (l *Log) Producer(pid int64) (ProducerEntry, bool) { return l.prod.get(pid) }

// Producers returns the state of every producer, ordered by id (copies).
func (l *Log) Producers() []ProducerEntry { return l.prod.all() }

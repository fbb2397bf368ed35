package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// TruncateTo drops every record at or above offset (a follower diverged from a new leader). A batch
// straddling offset is dropped whole; the end offset becomes offset. Leader epochs and producer state
// are fixed up. Crash-safe: the lowered recovery point is checkpointed before any file changes, so a
// crash midway is repaired by recovery.
//
// An offset at or beyond the end keeps every record but still drops leader epochs that start at the
// end, as Kafka does: a broker elected leader that appended nothing before the next election holds an
// epoch entry at its log end no other replica knows, and as a follower it would otherwise keep
// presenting that epoch to the new leader and be told to truncate, forever.
func (l *Log) TruncateTo(offset int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.checkInvariantsIfOpen()
	if l.closed.Load() {
		return ErrClosed
	}
	if offset < 0 {
		return fmt.Errorf("truncate to %d: %w", offset, ErrOffsetOutOfRange)
	}
	if leo := l.leo.Load(); offset >= leo {
		if l.epochs.truncateFromEnd(leo) {
			return l.epochs.persist(l.dir)
		}
		return nil
	}
	if err := l.markDirty(); err != nil {
		return err
	}
	// Order matters: hide the doomed offsets from readers and from flushes first (leo), then lower the
	// durable point and bump its generation, so no fsync that read the old end can raise it again.
	l.leo.Store(offset)
	l.lowerDurable(offset)
	for {
		c := l.cleanedUpTo.Load()
		if c <= offset || l.cleanedUpTo.CompareAndSwap(c, offset) {
			break
		}
	}
	if offset < l.logStart.Load() {
		return l.truncateFully(offset)
	}
	l.hw.Store(min(l.hw.Load(), offset))
	if err := l.writeCheckpoint(); err != nil {
		return err
	}
	segs := *l.segs.Load()
	// Drop whole segments starting at or above offset, newest first so a crash leaves a prefix.
	keep := len(segs)
	for keep > 1 && segs[keep-1].base >= offset {
		keep--
	}
	if keep < len(segs) {
		ns := slices.Clone(segs[:keep])
		l.segs.Store(&ns)
		for j := len(segs) - 1; j >= keep; j-- {
			if err := segs[j].removeFiles(); err != nil {
				return err
			}
		}
		segs = ns
	}
	s := segs[len(segs)-1]
	if err := l.truncateSegment(s, offset); err != nil {
		return err
	}
	txns, err := s.abortedTxns()
	if err != nil {
		return err
	}
	var keptTxns []AbortedTxn
	for _, e := range txns {
		if e.LastOffset < offset {
			keptTxns = append(keptTxns, e)
		}
	}
	if len(keptTxns) != len(txns) {
		if err := s.setAbortedTxns(keptTxns); err != nil {
			return err
		}
	}
	l.leo.Store(offset)
	if err := l.removeSnapshotsAbove(offset); err != nil {
		return err
	}
	if err := l.reloadProducers(offset); err != nil {
		return err
	}
	if l.epochs.truncateFromEnd(offset) {
		if err := l.epochs.persist(l.dir); err != nil {
			return err
		}
	}
	return nil
}

// truncateSegment cuts segment s before the first batch whose last offset is >= offset and rebuilds its
// in-memory index from the kept entries plus a short scan. Caller holds mu.
func (l *Log) truncateSegment(s *segment, offset int64) error {
	interval := l.config().IndexIntervalBytes
	size := s.size.Load()
	pos, _, found, err := s.findBatch(offset, size, interval)
	if err != nil {
		return fmt.Errorf("truncate %s: %w", s.logPath, err)
	}
	if !found {
		pos = size
	}
	if err := s.ref.f.Truncate(pos); err != nil {
		return fmt.Errorf("truncate %s: %w", s.logPath, err)
	}
	if err := fdatasync(s.ref.f); err != nil {
		return fmt.Errorf("sync %s: %w", s.logPath, err)
	}
	old, err := s.index(interval)
	if err != nil {
		return err
	}
	b := indexBuilder{base: s.base, interval: interval, idx: segIndex{maxTs: -1, maxTsOff: -1}}
	from := int64(0)
	for _, e := range old.off {
		if int64(e.pos) >= pos {
			break
		}
		b.idx.off = append(b.idx.off, e)
		from = int64(e.pos)
	}
	for _, e := range old.tim {
		if s.base+int64(e.rel) >= offset {
			break
		}
		b.idx.tim = append(b.idx.tim, e)
	}
	if n := len(b.idx.tim); n > 0 {
		b.idx.maxTs, b.idx.maxTsOff = b.idx.tim[n-1].ts, s.base+int64(b.idx.tim[n-1].rel)
	}
	// Batches from the last kept offset entry on were possibly not reflected in kept time entries.
	if _, err := scanSegment(s, from, pos, false, func(h BatchHeader, p int64, _ []byte) {
		b.add(h, p)
	}); err != nil {
		return fmt.Errorf("truncate %s: %w", s.logPath, err)
	}
	// Only entries before the cut are kept, even if the scan re-added some.
	idx := b.idx
	_ = s.closeWriterFiles()
	s.size.Store(pos)
	s.idx.Store(&idx)
	s.bytesSinceIndex = b.since
	if err := writeIndexFiles(s, &idx); err != nil {
		return err
	}
	return nil
}

// truncateFully deletes every segment and starts an empty log at offset. Caller holds mu.
func (l *Log) truncateFully(offset int64) error {
	l.logStart.Store(offset)
	l.hw.Store(offset)
	if err := l.writeCheckpoint(); err != nil {
		return err
	}
	segs := *l.segs.Load()
	s, err := openSegment(l.dir, offset, true)
	if err != nil {
		return err
	}
	s.created = l.clock()
	s.idx.Store(&segIndex{maxTs: -1, maxTsOff: -1})
	if err := syncDir(l.dir); err != nil {
		s.ref.release()
		return err
	}
	ns := []*segment{s}
	l.leo.Store(offset)
	l.segs.Store(&ns)
	for j := len(segs) - 1; j >= 0; j-- {
		if segs[j].base == offset {
			// Same file name: the new segment reopened it; just empty it.
			segs[j].idxMu.Lock()
			segs[j].deleted = true
			segs[j].idxMu.Unlock()
			_ = segs[j].closeWriterFiles()
			segs[j].ref.release()
			if err := s.ref.f.Truncate(0); err != nil {
				return fmt.Errorf("truncate %s: %w", s.logPath, err)
			}
			s.size.Store(0)
			_ = writeIndexFiles(s, &segIndex{})
			if err := s.setAbortedTxns(nil); err != nil {
				return err
			}
			continue
		}
		if err := segs[j].removeFiles(); err != nil {
			return err
		}
	}
	if err := l.removeSnapshotsAbove(offset - 1); err != nil {
		return err
	}
	l.prod.mu.Lock()
	l.prod.m = map[int64]*ProducerEntry{}
	l.prod.mu.Unlock()
	l.epochs.mu.Lock()
	l.epochs.entries = nil
	l.epochs.mu.Unlock()
	return l.epochs.persist(l.dir)
}

// removeSnapshotsAbove deletes producer snapshots with an offset > offset. Caller holds mu.
func (l *Log) removeSnapshotsAbove(offset int64) error {
	ents, err := os.ReadDir(l.dir)
	if err != nil {
		return fmt.Errorf("list %s: %w", l.dir, err)
	}
	for _, e := range ents {
		if b, ok := parseSegmentName(e.Name(), snapshotSuffix); ok && b > offset {
			if err := os.Remove(filepath.Join(l.dir, e.Name())); err != nil {
				return fmt.Errorf("remove snapshot: %w", err)
			}
		}
	}
	return nil
}

// reloadProducers rebuilds producer state from the snapshots on disk and the log up to leo.
// Caller holds mu.
func (l *Log) reloadProducers(leo int64) error {
	ents, err := os.ReadDir(l.dir)
	if err != nil {
		return fmt.Errorf("list %s: %w", l.dir, err)
	}
	var snaps []int64
	for _, e := range ents {
		if b, ok := parseSegmentName(e.Name(), snapshotSuffix); ok {
			snaps = append(snaps, b)
		}
	}
	l.prod.mu.Lock()
	l.prod.m = map[int64]*ProducerEntry{}
	l.prod.mu.Unlock()
	return l.loadProducers(snaps, leo, true)
}

// DeleteRecordsBefore advances the log start offset to offset (DeleteRecords) and deletes the segments
// wholly below it. The new log start is checkpointed before any file is removed. offset above the end
// offset gives ErrOffsetOutOfRange; at or below the current log start it is a no-op.
func (l *Log) DeleteRecordsBefore(offset int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.checkInvariantsIfOpen()
	if l.closed.Load() {
		return ErrClosed
	}
	if offset > l.leo.Load() {
		return fmt.Errorf("delete records before %d (end %d): %w", offset, l.leo.Load(), ErrOffsetOutOfRange)
	}
	if offset <= l.logStart.Load() {
		return nil
	}
	if err := l.markDirty(); err != nil {
		return err
	}
	l.logStart.Store(offset)
	if l.hw.Load() < offset {
		l.hw.Store(offset)
	}
	if err := l.writeCheckpoint(); err != nil {
		return err
	}
	segs := *l.segs.Load()
	n := 0
	for n+1 < len(segs) && segs[n+1].base <= offset {
		n++
	}
	if err := l.dropOldest(n); err != nil {
		return err
	}
	if l.epochs.truncateFromStart(offset) {
		return l.epochs.persist(l.dir)
	}
	return nil
}

// dropOldest removes the n oldest segments (never the active one). Caller holds mu and has already
// advanced and checkpointed the log start offset past them.
func (l *Log) dropOldest(n int) error {
	segs := *l.segs.Load()
	n = min(n, len(segs)-1)
	if n <= 0 {
		return nil
	}
	ns := slices.Clone(segs[n:])
	l.segs.Store(&ns)
	for _, s := range segs[:n] {
		if err := s.removeFiles(); err != nil {
			return err
		}
	}
	l.pruneSnapshots(l.leo.Load())
	return nil
}

// EnforceRetention deletes the oldest segments that are past retention.ms (by their largest timestamp)
// or beyond retention.bytes, when the cleanup policy includes delete. The active segment is never
// deleted. It returns how many segments were deleted. It also forgets producers idle for longer than
// Config.ProducerIDExpiration, whatever the cleanup policy.
func (l *Log) EnforceRetention(now time.Time) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.checkInvariantsIfOpen()
	if l.closed.Load() {
		return 0, ErrClosed
	}
	cfg := l.config()
	if n := l.prod.expire(now.Add(-cfg.ProducerIDExpiration).UnixMilli()); n > 0 {
		l.logger.Debug("expired idle producers", "count", n)
	}
	if !cfg.Delete {
		return 0, nil
	}
	segs := *l.segs.Load()
	n := 0
	if cfg.RetentionMS >= 0 {
		limit := now.Add(-cfg.RetentionMS).UnixMilli()
		for n < len(segs)-1 {
			idx, err := segs[n].index(cfg.IndexIntervalBytes)
			if err != nil {
				return 0, err
			}
			ts := idx.maxTs
			if idx.maxTsOff < 0 {
				ts = segs[n].created.UnixMilli()
			}
			if ts >= limit {
				break
			}
			n++
		}
	}
	if cfg.RetentionBytes >= 0 {
		total := l.Size()
		for i := 0; i < n; i++ {
			total -= segs[i].size.Load()
		}
		for n < len(segs)-1 && total-segs[n].size.Load() >= cfg.RetentionBytes {
			total -= segs[n].size.Load()
			n++
		}
	}
	if n == 0 {
		return 0, nil
	}
	if err := l.markDirty(); err != nil {
		return 0, err
	}
	newStart := segs[n].base
	if newStart > l.logStart.Load() {
		l.logStart.Store(newStart)
		if l.hw.Load() < newStart {
			l.hw.Store(newStart)
		}
	}
	if err := l.writeCheckpoint(); err != nil {
		return 0, err
	}
	if err := l.dropOldest(n); err != nil {
		return 0, err
	}
	if l.epochs.truncateFromStart(l.logStart.Load()) {
		if err := l.epochs.persist(l.dir); err != nil {
			return n, err
		}
	}
	l.logger.Info("retention deleted segments", "count", n, "log_start", l.logStart.Load())
	return n, nil
}

// checkInvariantsIfOpen runs checkInvariants unless the log is closed. Caller holds mu.
func (l *Log) checkInvariantsIfOpen() {
	if invariantsEnabled && !l.closed.Load() {
		l.checkInvariants()
	}
}

// TruncateFullyAndStartAt deletes every record and restarts the log, empty, at offset: a follower
// whose log ends below its leader's log start cannot fetch what it misses and starts over where the
// leader's log starts. Log start, high watermark and end offset all become offset; producer state and
// leader epochs are dropped. Crash-safe like TruncateTo: the new log start is checkpointed before any
// file is removed.
func (l *Log) TruncateFullyAndStartAt(offset int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.checkInvariantsIfOpen()
	if l.closed.Load() {
		return ErrClosed
	}
	if offset < 0 {
		return fmt.Errorf("truncate fully and start at %d: %w", offset, ErrOffsetOutOfRange)
	}
	if err := l.markDirty(); err != nil {
		return err
	}
	l.leo.Store(offset)
	l.lowerDurable(offset)
	l.cleanedUpTo.Store(offset)
	return l.truncateFully(offset)
}

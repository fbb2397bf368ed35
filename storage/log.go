package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Log is the segmented log of one partition, stored in one directory in Kafka's on-disk layout.
//
// Concurrency: one writer at a time (the caller serializes Append, TruncateTo, DeleteRecordsBefore,
// AssignEpoch); EnforceRetention, Compact, Sync, SetConfig and all readers may run concurrently with it.
// Readers (Read, OffsetForTimestamp, offsets, epochs, producers) never take mu, so they never wait for a
// write or an fsync.
type Log struct {
	dir    string
	clock  func() time.Time
	logger *slog.Logger
	cfg    atomic.Pointer[Config]

	// mu serializes every change to the segment list and the files: Append, roll, TruncateTo,
	// DeleteRecordsBefore, EnforceRetention, the swap step of Compact, Close.
	mu sync.Mutex
	// segs is the current segment list, oldest first; the last one is active. Replaced (never mutated)
	// under mu, loaded lock-free by readers.
	segs atomic.Pointer[[]*segment]

	// Invariant: logStart <= hw <= leo, and recoveryPoint <= leo. Written under mu (hw also by
	// SetHighWatermark), read lock-free.
	logStart atomic.Int64
	leo      atomic.Int64
	hw       atomic.Int64

	closed         atomic.Bool
	cleanMarker    bool       // the clean-shutdown marker file exists; guarded by mu
	lastCheckpoint checkpoint // what the checkpoint file holds; guarded by mu

	sync    syncState
	epochs  epochCache
	prod    producerState
	flusher *flusher // running iff the policy is FsyncInterval; guarded by mu

	compactMu sync.Mutex // one compaction at a time
	// cleanedUpTo is the end of the range the last compaction cleaned (in memory only: after a restart
	// the first compaction cleans everything once). Lowered by TruncateTo.
	cleanedUpTo atomic.Int64
}

// syncState implements group commit. One goroutine at a time (the "leader") runs an fsync; goroutines
// arriving meanwhile wait for it and then elect the next leader, whose fsync covers all of them.
type syncState struct {
	mu      sync.Mutex
	durable int64         // every offset < durable is on stable storage; also the recovery point
	gen     uint64        // bumped by truncation, so a flush that raced with it does not advance durable
	running bool          // an fsync is in progress
	done    chan struct{} // closed when the running fsync finishes
	err     error         // sticky: after a failed fsync the page cache state is unknown
}

// AppendInfo describes an append, at batch granularity.
type AppendInfo struct {
	FirstOffset, LastOffset int64
	MaxTimestamp            int64 // largest batch max timestamp, -1 when none
	OffsetOfMaxTimestamp    int64 // last offset of the batch holding MaxTimestamp
}

// Open opens (creating if needed) the partition log in dir. After an unclean stop it scans the segments
// from the recovery point, verifying every batch's length and CRC, truncates a torn or corrupt tail and
// rebuilds the indexes of those segments only. After a clean Close it reads nothing but a few small
// files, so opening thousands of partitions is fast.
func Open(dir string, cfg Config, opts ...Option) (*Log, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open log %s: %w", dir, err)
	}
	c := cfg.normalized()
	l := &Log{dir: dir, clock: o.clock, logger: o.logger.With("dir", dir)}
	l.cfg.Store(&c)
	l.prod.m = map[int64]*ProducerEntry{}
	if err := l.load(); err != nil {
		l.releaseAll()
		return nil, fmt.Errorf("open log %s: %w", dir, err)
	}
	l.checkInvariants()
	if c.Fsync == FsyncInterval {
		l.flusher = l.startFlusher()
	}
	return l, nil
}

// load builds the in-memory state from the directory.
func (l *Log) load() error {
	ents, err := os.ReadDir(l.dir)
	if err != nil {
		return err
	}
	var bases, snaps []int64
	indexFiles := map[int64][]string{}
	marker := false
	for _, e := range ents {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, tmpSuffix) || strings.HasSuffix(name, cleanedSuffix):
			_ = os.Remove(filepath.Join(l.dir, name))
		case name == cleanMarkerFile:
			marker = true
		case strings.HasSuffix(name, swapSuffix):
			if err := l.completeSwap(name); err != nil {
				return err
			}
		}
	}
	// Re-read after swap completion may have renamed files.
	if ents, err = os.ReadDir(l.dir); err != nil {
		return err
	}
	for _, e := range ents {
		name := e.Name()
		if b, ok := parseSegmentName(name, logSuffix); ok {
			bases = append(bases, b)
		} else if b, ok := parseSegmentName(name, indexSuffix); ok {
			indexFiles[b] = append(indexFiles[b], name)
		} else if b, ok := parseSegmentName(name, timeIndexSuffix); ok {
			indexFiles[b] = append(indexFiles[b], name)
		} else if b, ok := parseSegmentName(name, snapshotSuffix); ok {
			snaps = append(snaps, b)
		}
	}
	slices.Sort(bases)
	for b, names := range indexFiles {
		if _, found := slices.BinarySearch(bases, b); !found {
			for _, n := range names {
				_ = os.Remove(filepath.Join(l.dir, n))
			}
		}
	}
	cp, haveCP, err := readCheckpoint(l.dir)
	if err != nil {
		l.logger.Warn("ignoring unreadable checkpoint, recovering from the start", "err", err)
		haveCP = false
	}
	if haveCP {
		l.lastCheckpoint = cp
	}
	clean := marker && haveCP
	if marker && !clean {
		_ = os.Remove(filepath.Join(l.dir, cleanMarkerFile))
		marker = false
	}
	l.cleanMarker = marker

	segs := make([]*segment, 0, max(len(bases), 1))
	for _, b := range bases {
		s, err := openSegment(l.dir, b, false)
		if err != nil {
			closeSegs(segs)
			return err
		}
		segs = append(segs, s)
	}
	if len(segs) == 0 {
		base := int64(0)
		if haveCP {
			base = cp.logStart
		}
		s, err := openSegment(l.dir, base, true)
		if err != nil {
			return err
		}
		s.created = l.clock()
		segs = append(segs, s)
		if err := syncDir(l.dir); err != nil {
			closeSegs(segs)
			return err
		}
		clean = false
		cp.recoveryPoint = base
	}
	l.segs.Store(&segs)

	last := segs[len(segs)-1]
	var leo int64
	if clean {
		leo = max(cp.recoveryPoint, last.base)
	} else {
		rp := int64(0)
		if haveCP {
			rp = cp.recoveryPoint
		}
		start := segmentFor(segs, rp)
		// Producer state as of the first recovered segment, so that the scan can rebuild the
		// transaction indexes (an ABORT marker's entry needs its transaction's first offset).
		if err := l.loadProducers(snaps, segs[start].base, false); err != nil {
			return err
		}
		if leo, err = l.recover(start, rp); err != nil {
			return err
		}
	}
	segs = *l.segs.Load()
	l.leo.Store(leo)
	logStart := segs[0].base
	hw := int64(0)
	if haveCP {
		logStart = max(logStart, cp.logStart)
		hw = cp.highWatermark
	}
	if leo < logStart {
		// Recovery found the data end below the checkpointed log start (a truncation or DeleteRecords
		// in the middle of a batch left a gap, which the bytes alone cannot show). Offsets below the
		// log start are gone by definition, so the log resumes there instead of moving backwards.
		leo = logStart
		l.leo.Store(leo)
	}
	l.logStart.Store(logStart)
	// A crash after DeleteRecordsBefore checkpointed a new log start but before it removed the segments
	// below it leaves them behind; finish the job.
	n := 0
	for n+1 < len(segs) && segs[n+1].base <= logStart {
		n++
	}
	if n > 0 {
		if err := l.dropOldest(n); err != nil {
			return err
		}
		segs = *l.segs.Load()
	}
	l.hw.Store(min(max(hw, logStart), leo))
	// After a clean open the recovery point is the end; after recovery, every scanned segment was
	// fsynced (recover), so it is the end as well.
	l.sync.durable = leo

	es, err := loadEpochs(l.dir)
	if err != nil {
		return err
	}
	l.epochs.entries = es
	ch1 := l.epochs.truncateFromEnd(leo)
	ch2 := l.epochs.truncateFromStart(logStart)
	if ch1 || ch2 {
		if err := l.epochs.persist(l.dir); err != nil {
			return err
		}
	}
	if clean {
		if err := l.loadProducers(snaps, leo, true); err != nil {
			return err
		}
		return nil
	}
	if err := l.removeSnapshotsAbove(leo); err != nil {
		return err
	}
	return l.writeCheckpoint()
}

// recover verifies the segments from segs[start] to the end, truncating at the first invalid batch (and
// dropping every later segment), rebuilding their indexes and transaction indexes and applying their
// batches to producer state, which must hold the state as of segs[start].base. Batches below rp were
// durable already. It returns the log end offset.
func (l *Log) recover(start int, rp int64) (int64, error) {
	segs := *l.segs.Load()
	cfg := l.config()
	leo := segs[start].base
	l.prod.mu.Lock()
	defer l.prod.mu.Unlock()
	for i := start; i < len(segs); i++ {
		s := segs[i]
		size := s.size.Load()
		lastOff := int64(-1)
		b := indexBuilder{base: s.base, interval: cfg.IndexIntervalBytes, idx: segIndex{maxTs: -1, maxTsOff: -1}}
		var aborted []AbortedTxn
		valid, err := scanSegment(s, 0, size, true, func(h BatchHeader, pos int64, batch []byte) {
			b.add(h, pos)
			lastOff = h.LastOffset()
			ab, ok, aerr := l.prod.applyBatch(h, batch)
			if aerr != nil {
				l.logger.Warn("unreadable control batch during recovery", "file", s.logPath, "position", pos, "err", aerr)
			}
			if ok {
				aborted = append(aborted, ab)
			}
		})
		b.maybeTime()
		if err != nil && !errors.Is(err, ErrCorrupt) {
			return 0, err
		}
		idx := b.idx
		s.idx.Store(&idx)
		s.bytesSinceIndex = b.since
		leo = max(s.base, lastOff+1)
		if valid < size {
			l.logger.Warn("truncating invalid log tail", "file", s.logPath, "position", valid, "size", size, "err", err)
			if err := s.ref.f.Truncate(valid); err != nil {
				return 0, fmt.Errorf("truncate %s: %w", s.logPath, err)
			}
			s.size.Store(valid)
			for j := len(segs) - 1; j > i; j-- {
				if err := segs[j].removeFiles(); err != nil {
					return 0, err
				}
			}
			segs = slices.Clone(segs[:i+1])
			l.segs.Store(&segs)
		}
		if err := writeIndexFiles(s, &idx); err != nil {
			return 0, fmt.Errorf("rebuild index of %s: %w", s.logPath, err)
		}
		if err := s.setAbortedTxns(aborted); err != nil {
			return 0, fmt.Errorf("rebuild transaction index of %s: %w", s.logPath, err)
		}
		// What we just read beyond the old recovery point may be page cache left by a crashed
		// process; make it durable before the recovery point moves past it. (A segment that ends at
		// the recovery point needs no fsync: that keeps reopening many idle partitions cheap.)
		if lastOff >= rp {
			if err := s.ref.f.Sync(); err != nil {
				return 0, fmt.Errorf("sync recovered segment %s: %w", s.logPath, err)
			}
		}
		if valid < size {
			break
		}
	}
	return leo, nil
}

// loadProducers restores producer state as of offset leo from the newest usable snapshot at or below
// leo and replays the log from there. With prune, snapshots above leo describe truncated data and are
// deleted.
func (l *Log) loadProducers(snaps []int64, leo int64, prune bool) error {
	slices.Sort(snaps)
	from := (*l.segs.Load())[0].base
	l.prod.m = map[int64]*ProducerEntry{}
	for i := len(snaps) - 1; i >= 0; i-- {
		p := filepath.Join(l.dir, segmentName(snaps[i])+snapshotSuffix)
		if snaps[i] > leo {
			if prune {
				_ = os.Remove(p)
			}
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		off, es, err := decodeSnapshot(b)
		if err != nil || off != snaps[i] {
			l.logger.Warn("ignoring bad producer snapshot", "file", p, "err", err)
			_ = os.Remove(p)
			continue
		}
		for _, e := range es {
			e := e
			l.prod.m[e.ProducerID] = &e
		}
		from = max(from, off)
		break
	}
	return l.replayProducers(from, leo)
}

// replayProducers applies the headers of all batches with offsets in [from, leo) to producer state.
func (l *Log) replayProducers(from, leo int64) error {
	if from >= leo {
		return nil
	}
	cfg := l.config()
	segs := *l.segs.Load()
	l.prod.mu.Lock()
	defer l.prod.mu.Unlock()
	for i, s := range segs {
		if i+1 < len(segs) && segs[i+1].base <= from {
			continue
		}
		size := s.size.Load()
		pos, _, found, err := s.findBatch(from, size, cfg.IndexIntervalBytes)
		if err != nil {
			return fmt.Errorf("replay producer state: %w", err)
		}
		if !found {
			continue
		}
		var markerErr error
		if _, err := scanSegment(s, pos, size, false, func(h BatchHeader, pos int64, _ []byte) {
			if h.LastOffset() >= leo {
				return
			}
			if !h.IsControl() || h.ProducerID < 0 {
				l.prod.update(h)
				return
			}
			// A marker's body carries its coordinator epoch; headers are not enough.
			batch := make([]byte, h.Size())
			if _, err := s.ref.f.ReadAt(batch, pos); err != nil {
				markerErr = fmt.Errorf("read marker at %s:%d: %w", s.logPath, pos, err)
				l.prod.update(h)
				return
			}
			if _, _, err := l.prod.applyBatch(h, batch); err != nil {
				l.logger.Warn("unreadable control batch during producer replay", "file", s.logPath, "position", pos, "err", err)
			}
		}); err != nil {
			return fmt.Errorf("replay producer state: %w", err)
		}
		if markerErr != nil {
			return fmt.Errorf("replay producer state: %w", markerErr)
		}
	}
	return nil
}

func closeSegs(segs []*segment) {
	for _, s := range segs {
		_ = s.closeWriterFiles()
		s.ref.release()
	}
}

// releaseAll drops the log's references to every segment file (Slices keep theirs).
func (l *Log) releaseAll() {
	if p := l.segs.Load(); p != nil {
		closeSegs(*p)
		empty := []*segment{}
		l.segs.Store(&empty)
	}
}

func (l *Log) config() Config { return *l.cfg.Load() }

// Dir returns the partition directory.
func (l *Log) Dir() string { return l.dir }

// SetConfig applies a live configuration change (AlterConfigs). New segment sizes apply at the next
// roll; a change of fsync policy starts or stops the interval flusher.
func (l *Log) SetConfig(cfg Config) {
	c := cfg.normalized()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cfg.Store(&c)
	if l.closed.Load() {
		return
	}
	if c.Fsync == FsyncInterval && l.flusher == nil {
		l.flusher = l.startFlusher()
	} else if c.Fsync != FsyncInterval && l.flusher != nil {
		l.flusher.stop()
		l.flusher = nil
	}
}

// LogStartOffset is the first offset readers may ask for.
func (l *Log) LogStartOffset() int64 { return l.logStart.Load() }

// EndOffset is the log end offset: the offset the next appended record gets.
func (l *Log) EndOffset() int64 { return l.leo.Load() }

// HighWatermark returns the last value set with SetHighWatermark (or restored from the checkpoint).
func (l *Log) HighWatermark() int64 { return l.hw.Load() }

// SetHighWatermark records the high watermark, clamped to [LogStartOffset, EndOffset]. It is persisted
// lazily (roll, Checkpoint, Close).
func (l *Log) SetHighWatermark(hw int64) {
	hw = min(max(hw, l.logStart.Load()), l.leo.Load())
	l.hw.Store(hw)
}

// Size is the total size of the segment files in bytes.
func (l *Log) Size() int64 {
	var n int64
	for _, s := range *l.segs.Load() {
		n += s.size.Load()
	}
	return n
}

// NumSegments is the number of segments, the active one included.
func (l *Log) NumSegments() int { return len(*l.segs.Load()) }

// RecoveryPoint is the offset below which everything is known to be on stable storage.
func (l *Log) RecoveryPoint() int64 {
	l.sync.mu.Lock()
	defer l.sync.mu.Unlock()
	return l.sync.durable
}

// Checkpoint persists log start offset, high watermark and recovery point. The broker may call it
// periodically so that recovery after a crash has less to scan and the high watermark survives.
func (l *Log) Checkpoint() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Load() {
		return ErrClosed
	}
	return l.writeCheckpoint()
}

// writeCheckpoint writes the checkpoint file. Caller holds mu.
func (l *Log) writeCheckpoint() error {
	c := checkpoint{logStart: l.logStart.Load(), highWatermark: l.hw.Load(), recoveryPoint: l.RecoveryPoint()}
	if c == l.lastCheckpoint {
		return nil // unchanged: spare the fsyncs (Close of an idle partition stays cheap)
	}
	if err := writeFileAtomic(l.dir, checkpointFile, encodeCheckpoint(c)); err != nil {
		return err
	}
	l.lastCheckpoint = c
	return nil
}

// markDirty removes the clean-shutdown marker (durably) before the first change to the files after a
// clean open, so that a crash from here on triggers recovery. Caller holds mu.
func (l *Log) markDirty() error {
	if !l.cleanMarker {
		return nil
	}
	if err := os.Remove(filepath.Join(l.dir, cleanMarkerFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove clean-shutdown marker: %w", err)
	}
	if err := syncDir(l.dir); err != nil {
		return err
	}
	l.cleanMarker = false
	return nil
}

// active returns the active segment. Caller holds mu.
func (l *Log) active() *segment {
	segs := *l.segs.Load()
	return segs[len(segs)-1]
}

// prepareWriter makes sure the active segment's index is loaded and its index files are open for
// appending. Caller holds mu.
func (l *Log) prepareWriter(s *segment) (*segIndex, error) {
	idx, err := s.index(l.config().IndexIntervalBytes)
	if err != nil {
		return nil, err
	}
	if s.offFile == nil {
		if err := s.openWriterFiles(); err != nil {
			return nil, err
		}
		s.bytesSinceIndex = int(s.size.Load())
		s.writebackFrom = s.size.Load() &^ (pageSize - 1)
		if n := len(idx.off); n > 0 {
			s.bytesSinceIndex = int(s.size.Load() - int64(idx.off[n-1].pos))
		}
	}
	return idx, nil
}

type batchRef struct {
	h   BatchHeader
	pos int // within the appended buffer
}

// Append writes complete v2 batches whose offsets the caller already stamped. The first base offset
// must be >= EndOffset() and offsets must increase; gaps are allowed. The bytes are stored unchanged.
// Append returns after write(2); call Sync for durability. Every batch's CRC-32C is checked first.
func (l *Log) Append(batches []byte) (AppendInfo, error) {
	return l.append(batches, true)
}

// AppendVerified is Append for a caller that has already checked the CRC-32C of every batch in
// batches since it last changed a byte the CRC covers (the produce path validates each batch before
// it stamps the base offset and leader epoch, which lie outside the CRC). It saves the second pass
// over the bytes; all other checks are Append's.
func (l *Log) AppendVerified(batches []byte) (AppendInfo, error) {
	return l.append(batches, false)
}

func (l *Log) append(batches []byte, checkCRC bool) (AppendInfo, error) {
	info := AppendInfo{FirstOffset: -1, LastOffset: -1, MaxTimestamp: -1, OffsetOfMaxTimestamp: -1}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Load() {
		return info, ErrClosed
	}
	next := l.leo.Load()
	var refs []batchRef
	var verr error
	err := SplitBatches(batches, func(h BatchHeader, b []byte) bool {
		if h.BaseOffset < next {
			verr = fmt.Errorf("append batch with base offset %d below next offset %d: %w", h.BaseOffset, next, ErrOffsetOutOfRange)
			return false
		}
		if checkCRC {
			if err := VerifyCRC(b); err != nil {
				verr = fmt.Errorf("append batch at offset %d: %w", h.BaseOffset, err)
				return false
			}
		}
		if h.IsControl() {
			if _, err := controlType(h, b); err != nil {
				verr = fmt.Errorf("append batch at offset %d: %w", h.BaseOffset, err)
				return false
			}
		}
		refs = append(refs, batchRef{h: h})
		next = h.LastOffset() + 1
		return true
	})
	if err == nil {
		err = verr
	}
	if err != nil {
		return info, fmt.Errorf("append: %w", err)
	}
	if len(refs) == 0 {
		return info, fmt.Errorf("append: %w: no batches", ErrInvalidBatch)
	}
	// Positions within the buffer, computed from sizes (the closure above saw subslices only).
	p := 0
	for i := range refs {
		refs[i].pos = p
		p += refs[i].h.Size()
	}
	first, last := refs[0].h, refs[len(refs)-1].h
	if last.LastOffset()-first.BaseOffset > math.MaxInt32 || len(batches) > math.MaxInt32/2 {
		return info, fmt.Errorf("append: %w: offsets or bytes of one append span too much", ErrInvalidBatch)
	}
	if err := l.markDirty(); err != nil {
		return info, err
	}
	s := l.active()
	if l.shouldRoll(s, len(batches), last.LastOffset()) {
		if err := l.roll(first.BaseOffset); err != nil {
			return info, err
		}
		s = l.active()
	}
	idx, err := l.prepareWriter(s)
	if err != nil {
		return info, err
	}
	pos := s.size.Load()
	if _, err := s.ref.f.WriteAt(batches, pos); err != nil {
		// Cut off whatever part made it, so the file never holds a torn batch we returned an error for.
		_ = s.ref.f.Truncate(pos)
		return info, fmt.Errorf("append to %s: %w", s.logPath, err)
	}
	if l.config().Fsync == FsyncAlways {
		s.startWritebackTo(pos + int64(len(batches)))
	}
	b := indexBuilder{base: s.base, interval: l.config().IndexIntervalBytes, since: s.bytesSinceIndex, idx: *idx}
	nOff, nTim := len(idx.off), len(idx.tim)
	for _, r := range refs {
		b.add(r.h, pos+int64(r.pos))
		if r.h.MaxTimestamp > info.MaxTimestamp {
			info.MaxTimestamp, info.OffsetOfMaxTimestamp = r.h.MaxTimestamp, r.h.LastOffset()
		}
	}
	s.bytesSinceIndex = b.since
	if len(b.idx.off) > nOff || len(b.idx.tim) > nTim {
		if err := s.queueIndexEntries(b.idx.off[nOff:], b.idx.tim[nTim:]); err != nil {
			l.logger.Warn("index write failed; it will be rebuilt on recovery", "err", err)
		}
	}
	newIdx := b.idx
	// Publication order matters: size before idx (readers load idx first), both before leo.
	s.size.Store(pos + int64(len(batches)))
	s.idx.Store(&newIdx)
	l.leo.Store(next)

	var aborted []AbortedTxn
	l.prod.mu.Lock()
	for _, r := range refs {
		// Control batches were validated above, so applyBatch cannot fail here.
		if ab, ok, _ := l.prod.applyBatch(r.h, batches[r.pos:r.pos+r.h.Size()]); ok {
			aborted = append(aborted, ab)
		}
	}
	// The index entries are published before prod.mu is released: readers learn that an ABORT closed
	// a transaction (FirstUnstableOffset moves, so the last stable offset passes its records) only
	// under prod.mu, and must then find the entry, or a read_committed fetch in between returns the
	// aborted records without listing their transaction.
	if len(aborted) > 0 {
		if err := s.addAbortedTxns(aborted); err != nil {
			l.prod.mu.Unlock()
			return info, err
		}
	}
	l.prod.mu.Unlock()
	epochChanged := false
	for _, r := range refs {
		if e := r.h.PartitionLeaderEpoch; e >= 0 && e > l.epochs.latest() {
			epochChanged = l.epochs.assign(e, r.h.BaseOffset) || epochChanged
		}
	}
	if epochChanged {
		if err := l.epochs.persist(l.dir); err != nil {
			return info, err
		}
	}
	info.FirstOffset, info.LastOffset = first.BaseOffset, last.LastOffset()
	l.checkInvariants()
	return info, nil
}

// shouldRoll decides whether an append of n bytes ending at lastOffset needs a new segment. Caller
// holds mu.
func (l *Log) shouldRoll(s *segment, n int, lastOffset int64) bool {
	size := s.size.Load()
	if size == 0 {
		return lastOffset-s.base > math.MaxInt32
	}
	cfg := l.config()
	return size+int64(n) > cfg.SegmentBytes ||
		size+int64(n) > math.MaxInt32 ||
		lastOffset-s.base > math.MaxInt32 ||
		l.clock().Sub(s.created) >= cfg.SegmentMS
}

// roll finishes the active segment (final time-index entry, fsync of log and indexes) and starts a new
// one at base, snapshotting producer state there. Caller holds mu.
func (l *Log) roll(base int64) error {
	old := l.active()
	segs := *l.segs.Load()
	if old.size.Load() == 0 {
		// An empty active segment whose base is too far below the new offsets: replace it.
		if err := old.removeFiles(); err != nil {
			return err
		}
		segs = segs[:len(segs)-1]
		if len(segs) == 0 {
			// The log was empty: it now starts where the new offsets do.
			l.logStart.Store(base)
			l.hw.Store(max(l.hw.Load(), base))
		}
	} else if err := l.finishSegment(old); err != nil {
		return err
	}
	if err := l.writeProducerSnapshot(base); err != nil {
		return err
	}
	s, err := openSegment(l.dir, base, true)
	if err != nil {
		return err
	}
	s.created = l.clock()
	empty := &segIndex{maxTs: -1, maxTsOff: -1}
	s.idx.Store(empty)
	if err := s.openWriterFiles(); err != nil {
		s.ref.release()
		return err
	}
	if err := syncDir(l.dir); err != nil {
		_ = s.closeWriterFiles()
		s.ref.release()
		return err
	}
	ns := append(slices.Clone(segs), s)
	l.segs.Store(&ns)
	l.advanceDurable(l.leo.Load())
	return l.writeCheckpoint()
}

// finishSegment appends the final time-index entry and fsyncs the segment's log and index files, then
// closes the index handles. Caller holds mu.
func (l *Log) finishSegment(s *segment) error {
	idx, err := l.prepareWriter(s)
	if err != nil {
		return err
	}
	b := indexBuilder{base: s.base, idx: *idx}
	if b.maybeTime() {
		s.pendingTim = appendTimeEntries(s.pendingTim, b.idx.tim[len(idx.tim):])
		ni := b.idx
		s.idx.Store(&ni)
	}
	if err := s.flushIndexEntries(); err != nil {
		return err
	}
	if err := s.ref.f.Sync(); err != nil {
		return fmt.Errorf("sync segment %s: %w", s.logPath, err)
	}
	if err := s.syncIndexFiles(); err != nil {
		return err
	}
	return s.closeWriterFiles()
}

// writeProducerSnapshot writes <offset>.snapshot and prunes older ones. Caller holds mu.
func (l *Log) writeProducerSnapshot(offset int64) error {
	data := encodeSnapshot(offset, l.prod.all())
	if err := writeFileAtomic(l.dir, segmentName(offset)+snapshotSuffix, data); err != nil {
		return fmt.Errorf("producer snapshot: %w", err)
	}
	l.pruneSnapshots(offset)
	return nil
}

// pruneSnapshots keeps one producer snapshot per segment base (as Kafka does; recovery starts from the
// one at the first segment it scans) plus the newest, latest: it deletes snapshots below the first
// segment and those inside the active segment other than latest. Caller holds mu.
func (l *Log) pruneSnapshots(latest int64) {
	ents, err := os.ReadDir(l.dir)
	if err != nil {
		return
	}
	segs := *l.segs.Load()
	first, active := segs[0].base, segs[len(segs)-1].base
	for _, e := range ents {
		b, ok := parseSegmentName(e.Name(), snapshotSuffix)
		if ok && (b < first || (b > active && b < latest)) {
			_ = os.Remove(filepath.Join(l.dir, e.Name()))
		}
	}
}

// advanceDurable records that everything below off is on stable storage.
func (l *Log) advanceDurable(off int64) {
	l.sync.mu.Lock()
	if off > l.sync.durable {
		l.sync.durable = off
	}
	l.sync.mu.Unlock()
}

// lowerDurable moves the durable point back after truncation and invalidates flushes in flight.
func (l *Log) lowerDurable(off int64) {
	l.sync.mu.Lock()
	l.sync.gen++
	l.sync.durable = min(l.sync.durable, off)
	l.sync.mu.Unlock()
}

// Sync blocks until every offset up to and including offset (bounded by what was appended) is durable
// under the fsync policy. With FsyncAlways it uses group commit: concurrent callers share one fsync.
// With FsyncInterval and FsyncNever it returns at once.
func (l *Log) Sync(ctx context.Context, offset int64) error {
	if l.closed.Load() {
		return ErrClosed
	}
	if l.config().Fsync != FsyncAlways {
		return nil
	}
	return l.syncTo(ctx, min(offset+1, l.leo.Load()))
}

// syncTo waits until durable >= want, running fsyncs as the group-commit leader when none is running.
func (l *Log) syncTo(ctx context.Context, want int64) error {
	st := &l.sync
	st.mu.Lock()
	for {
		if st.err != nil {
			err := st.err
			st.mu.Unlock()
			return err
		}
		// Truncation may have lowered the end below what was asked for; never wait for offsets that
		// no longer exist.
		want = min(want, l.leo.Load())
		if st.durable >= want {
			st.mu.Unlock()
			return nil
		}
		if l.closed.Load() {
			st.mu.Unlock()
			return ErrClosed
		}
		if !st.running {
			st.running = true
			done := make(chan struct{})
			st.done = done
			gen := st.gen
			st.mu.Unlock()
			target, err := l.fsyncActive()
			st.mu.Lock()
			if err != nil {
				st.err = err
			} else if gen == st.gen && target > st.durable {
				st.durable = target
			}
			st.running = false
			close(done)
			continue
		}
		done := st.done
		st.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
		st.mu.Lock()
	}
}

// fsyncActive fdatasyncs the active segment and returns the end offset that is now durable. Rolled
// segments were fsynced by roll before the new segment was published, so the active one suffices.
func (l *Log) fsyncActive() (int64, error) {
	for range 100 {
		target := l.leo.Load()
		if l.closed.Load() {
			return 0, ErrClosed
		}
		segs := *l.segs.Load()
		s := segs[len(segs)-1]
		if !s.ref.acquire() {
			continue // replaced under us by truncation or compaction; look again
		}
		err := fdatasync(s.ref.f)
		s.ref.release()
		if err != nil {
			return 0, fmt.Errorf("fsync %s: %w", s.logPath, err)
		}
		return target, nil
	}
	return 0, fmt.Errorf("fsync: active segment kept changing")
}

// flusher runs periodic fsyncs for FsyncInterval. Owned by the Log: started by Open/SetConfig, stopped
// by SetConfig/Close.
type flusher struct {
	quit chan struct{}
	done chan struct{}
}

func (l *Log) startFlusher() *flusher {
	f := &flusher{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(f.done)
		for {
			t := time.NewTimer(l.config().FsyncInterval)
			select {
			case <-f.quit:
				t.Stop()
				return
			case <-t.C:
			}
			if err := l.syncTo(context.Background(), l.leo.Load()); err != nil && !errors.Is(err, ErrClosed) {
				l.logger.Error("interval fsync failed", "err", err)
			}
		}
	}()
	return f
}

func (f *flusher) stop() {
	close(f.quit)
	<-f.done
}

// Close shuts the log down cleanly: fsync, final index entries, producer snapshot, checkpoint, and the
// clean-shutdown marker that lets the next Open skip recovery. Slices still held stay readable.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Load() {
		return nil
	}
	if l.flusher != nil {
		l.flusher.stop()
		l.flusher = nil
	}
	err := l.closeLocked()
	l.closed.Store(true)
	l.releaseAll()
	return err
}

func (l *Log) closeLocked() error {
	s := l.active()
	if l.cleanMarker {
		// Nothing in the segments changed since the clean open; only the high watermark may have moved.
		return l.writeCheckpoint()
	}
	if err := l.finishSegment(s); err != nil {
		return err
	}
	leo := l.leo.Load()
	l.advanceDurable(leo)
	if err := l.writeProducerSnapshot(leo); err != nil {
		return err
	}
	if err := l.writeCheckpoint(); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(l.dir, cleanMarkerFile))
	if err != nil {
		return fmt.Errorf("write clean-shutdown marker: %w", err)
	}
	_ = f.Close()
	return syncDir(l.dir)
}

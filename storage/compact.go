package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// File suffixes used while compaction replaces segments (appended to "<base>.log").
const (
	cleanedSuffix = ".cleaned" // being written; deleted on Open
	swapSuffix    = ".swap"    // complete replacement; Open finishes the swap
)

// Control record types (the int16 after the version in a control record's key).
const (
	controlAbort  = 0
	controlCommit = 1
)

// Compact cleans the log for cleanup.policy=compact: in every segment below the cleanable limit (the
// active segment's base, the high watermark and the first offset of any open transaction, whichever is
// lowest) it keeps only the newest record per key, drops records of aborted transactions, and drops
// tombstones (null values) whose timestamp is older than delete.retention.ms before now. Offsets of
// kept records never change, so the log gets gaps; batch boundaries and headers (producer id, epoch,
// base sequence, leader epoch) are kept, and a producer's last batch is kept even when emptied so its
// sequence state survives, as Kafka does. Control batches (transaction markers) are kept.
//
// Compact runs concurrently with appends and readers: it reads immutable segments without locks and
// takes the writer lock only to swap finished segments in. One compaction runs at a time.
func (l *Log) Compact(ctx context.Context, now time.Time) error {
	if l.closed.Load() {
		return ErrClosed
	}
	cfg := l.config()
	if !cfg.Compact {
		return nil
	}
	l.compactMu.Lock()
	defer l.compactMu.Unlock()

	segs := *l.segs.Load()
	limit := min(segs[len(segs)-1].base, l.hw.Load())
	for _, p := range l.Producers() {
		if p.CurrentTxnFirstOffset >= 0 {
			limit = min(limit, p.CurrentTxnFirstOffset)
		}
	}
	var cleanable []*segment
	for i := 0; i+1 < len(segs); i++ {
		if segs[i+1].base <= limit {
			cleanable = append(cleanable, segs[i])
		}
	}
	if len(cleanable) == 0 {
		return nil
	}
	// Dirty ratio, as Kafka's cleaner decides whether a log is worth cleaning.
	cleanEnd := segs[len(cleanable)].base
	var dirty, total int64
	for i, s := range cleanable {
		sz := s.size.Load()
		total += sz
		if segs[i+1].base > l.cleanedUpTo.Load() {
			dirty += sz
		}
	}
	if dirty == 0 || float64(dirty) < cfg.MinCleanableDirtyRatio*float64(total) {
		return nil
	}
	for _, s := range cleanable {
		if !s.ref.acquire() {
			return nil // retention removed it meanwhile; try again next time
		}
		defer s.ref.release()
	}
	st, err := l.scanTransactions(ctx, segs)
	if err != nil {
		return err
	}
	latest, err := l.buildOffsetMap(ctx, cleanable, st)
	if err != nil {
		return err
	}
	horizon := now.Add(-cfg.DeleteRetention).UnixMilli()
	for _, group := range groupSegments(cleanable, segs, cfg.SegmentBytes) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := l.cleanGroup(group, latest, st, horizon); err != nil {
			return err
		}
	}
	l.cleanedUpTo.Store(max(l.cleanedUpTo.Load(), min(cleanEnd, l.leo.Load())))
	return nil
}

// txnScan is what compaction needs to know about producers across the whole log.
type txnScan struct {
	aborted   map[int64]bool  // base offsets of transactional data batches whose transaction aborted
	lastBatch map[int64]int64 // producer id -> base offset of its last data batch in the log
}

// scanTransactions reads every batch header (and control records) of the log to find aborted
// transactional batches and each producer's last batch.
func (l *Log) scanTransactions(ctx context.Context, segs []*segment) (*txnScan, error) {
	st := &txnScan{aborted: map[int64]bool{}, lastBatch: map[int64]int64{}}
	open := map[int64][]int64{} // pid -> base offsets of its open transaction's batches
	for _, s := range segs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !s.ref.acquire() {
			continue
		}
		var ferr error
		_, err := scanSegment(s, 0, s.size.Load(), false, func(h BatchHeader, pos int64, _ []byte) {
			if ferr != nil || h.ProducerID < 0 {
				return
			}
			if !h.IsControl() {
				st.lastBatch[h.ProducerID] = h.BaseOffset
				if h.IsTransactional() {
					open[h.ProducerID] = append(open[h.ProducerID], h.BaseOffset)
				}
				return
			}
			b := make([]byte, h.Size())
			if _, err := s.ref.f.ReadAt(b, pos); err != nil {
				ferr = fmt.Errorf("read control batch in %s at %d: %w", s.logPath, pos, err)
				return
			}
			recs, err := batchRecords(h, b)
			if err != nil || len(recs) == 0 || len(recs[0].Key) < 4 {
				ferr = &CorruptError{File: s.logPath, Position: pos, Err: fmt.Errorf("%w: bad control batch", ErrInvalidBatch)}
				return
			}
			if int16(binary.BigEndian.Uint16(recs[0].Key[2:])) == controlAbort {
				for _, o := range open[h.ProducerID] {
					st.aborted[o] = true
				}
			}
			delete(open, h.ProducerID)
		})
		s.ref.release()
		if err == nil {
			err = ferr
		}
		if err != nil {
			return nil, fmt.Errorf("compact: %w", err)
		}
	}
	return st, nil
}

// buildOffsetMap maps every key in the cleanable segments to the offset of its newest record there.
func (l *Log) buildOffsetMap(ctx context.Context, cleanable []*segment, st *txnScan) (map[string]int64, error) {
	latest := map[string]int64{}
	for _, s := range cleanable {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var ferr error
		_, err := scanSegment(s, 0, s.size.Load(), true, func(h BatchHeader, pos int64, b []byte) {
			if ferr != nil || h.IsControl() || st.aborted[h.BaseOffset] {
				return
			}
			recs, err := batchRecords(h, b)
			if err != nil {
				ferr = &CorruptError{File: s.logPath, Position: pos, Err: err}
				return
			}
			for _, r := range recs {
				if r.Key != nil {
					latest[string(r.Key)] = h.BaseOffset + int64(r.OffsetDelta)
				}
			}
		})
		if err == nil {
			err = ferr
		}
		if err != nil {
			return nil, fmt.Errorf("compact: %w", err)
		}
	}
	return latest, nil
}

// groupSegments splits consecutive cleanable segments into runs that fit one output segment.
func groupSegments(cleanable, all []*segment, maxBytes int64) [][]*segment {
	next := func(s *segment) int64 {
		for i, x := range all {
			if x == s && i+1 < len(all) {
				return all[i+1].base
			}
		}
		return s.base
	}
	var groups [][]*segment
	var cur []*segment
	var size int64
	for _, s := range cleanable {
		sz := s.size.Load()
		if len(cur) > 0 && (size+sz > maxBytes || next(s)-cur[0].base > 1<<31-1) {
			groups = append(groups, cur)
			cur, size = nil, 0
		}
		cur = append(cur, s)
		size += sz
	}
	if len(cur) > 0 {
		groups = append(groups, cur)
	}
	return groups
}

// cleanGroup writes the cleaned contents of a run of segments to one new segment and swaps it in.
func (l *Log) cleanGroup(group []*segment, latest map[string]int64, st *txnScan, horizon int64) error {
	base := group[0].base
	final := filepath.Join(l.dir, segmentName(base)+logSuffix)
	cleaned := final + cleanedSuffix
	f, err := os.OpenFile(cleaned, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = f.Close()
			_ = os.Remove(cleaned)
		}
	}()
	cfg := l.config()
	b := indexBuilder{base: base, interval: cfg.IndexIntervalBytes, idx: segIndex{maxTs: -1, maxTsOff: -1}}
	var pos int64
	buf := make([]byte, 0, 1<<20)
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		_, err := f.Write(buf)
		buf = buf[:0]
		return err
	}
	for _, s := range group {
		// Readers of the old segments must keep consistent indexes: load them before files change.
		if _, err := s.index(cfg.IndexIntervalBytes); err != nil {
			return err
		}
		var ferr error
		_, err := scanSegment(s, 0, s.size.Load(), true, func(h BatchHeader, p int64, batch []byte) {
			if ferr != nil {
				return
			}
			out, err := cleanBatch(h, batch, latest, st, horizon)
			if err != nil {
				ferr = &CorruptError{File: s.logPath, Position: p, Err: err}
				return
			}
			if out == nil {
				return
			}
			oh, _ := ParseBatchHeader(out)
			b.add(oh, pos)
			pos += int64(len(out))
			buf = append(buf, out...)
			if len(buf) >= 1<<20 {
				ferr = flush()
			}
		})
		if err == nil {
			err = ferr
		}
		if err != nil {
			return fmt.Errorf("compact %s: %w", s.logPath, err)
		}
	}
	if err := flush(); err != nil {
		return fmt.Errorf("compact: write %s: %w", cleaned, err)
	}
	b.maybeTime()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("compact: sync %s: %w", cleaned, err)
	}
	idx := b.idx
	swapped, err := l.swapIn(group, f, cleaned, final, &idx, pos)
	if err != nil {
		return err
	}
	ok = swapped // when not swapped (the group changed meanwhile) the deferred cleanup drops the file
	return nil
}

// cleanBatch returns the batch to write for one input batch: the batch itself when every record stays,
// a re-encoded batch with the kept records, an empty batch to preserve a producer's last sequence, or
// nil to drop it.
func cleanBatch(h BatchHeader, batch []byte, latest map[string]int64, st *txnScan, horizon int64) ([]byte, error) {
	if h.IsControl() {
		return batch, nil
	}
	isLast := h.ProducerID >= 0 && st.lastBatch[h.ProducerID] == h.BaseOffset
	var kept []Record
	all := true
	if !st.aborted[h.BaseOffset] {
		recs, err := batchRecords(h, batch)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			off := h.BaseOffset + int64(r.OffsetDelta)
			keep := true
			if r.Key != nil {
				if lo, ok := latest[string(r.Key)]; ok && lo > off {
					keep = false
				}
			}
			if keep && r.Value == nil && h.BaseTimestamp+r.TimestampDelta < horizon {
				keep = false // tombstone past delete.retention.ms
			}
			if keep {
				kept = append(kept, r)
			} else {
				all = false
			}
		}
	} else {
		all = false
	}
	if all {
		return batch, nil
	}
	if len(kept) == 0 && !isLast {
		return nil, nil
	}
	nh := h
	if h.TimestampType() == 0 && len(kept) > 0 {
		nh.MaxTimestamp = h.BaseTimestamp
		for _, r := range kept {
			nh.MaxTimestamp = max(nh.MaxTimestamp, h.BaseTimestamp+r.TimestampDelta)
		}
	}
	return encodeBatch(nh, kept)
}

// swapIn replaces the group's segments with the cleaned file, crash-safely: the cleaned file becomes
// "<base>.log.swap" (complete, durable), then the old files go, then the swap file takes the final
// name. Open finishes an interrupted swap from the .swap file. swapped is false when the group changed
// meanwhile and nothing was done; on true, f belongs to the new segment. Takes mu.
func (l *Log) swapIn(group []*segment, f *os.File, cleaned, final string, idx *segIndex, size int64) (swapped bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Load() {
		return false, ErrClosed
	}
	segs := *l.segs.Load()
	// The group must still be there, unchanged and not active (retention or truncation may have acted).
	at := slices.Index(segs, group[0])
	if at < 0 || at+len(group) >= len(segs) {
		return false, nil
	}
	for i, s := range group {
		if segs[at+i] != s {
			return false, nil
		}
	}
	if err := l.markDirty(); err != nil {
		return false, err
	}
	swap := final + swapSuffix
	if err := os.Rename(cleaned, swap); err != nil {
		return false, fmt.Errorf("compact: %w", err)
	}
	if err := syncDir(l.dir); err != nil {
		return false, err
	}
	first := group[0]
	_ = os.Remove(first.indexPath())
	_ = os.Remove(first.timeIndexPath())
	for _, s := range group[1:] {
		if err := s.removeFiles(); err != nil {
			return false, err
		}
	}
	if err := os.Rename(swap, final); err != nil {
		return false, fmt.Errorf("compact: %w", err)
	}
	if err := syncDir(l.dir); err != nil {
		return false, err
	}
	ns := &segment{base: first.base, logPath: final, ref: newFileRef(f), created: first.created}
	ns.size.Store(size)
	ns.idx.Store(idx)
	if err := writeIndexFiles(ns, idx); err != nil {
		l.logger.Warn("writing compacted index failed; it will be rebuilt", "err", err)
	}
	out := slices.Concat(segs[:at], []*segment{ns}, segs[at+len(group):])
	l.segs.Store(&out)
	first.idxMu.Lock()
	first.deleted = true
	first.idxMu.Unlock()
	first.ref.release()
	l.checkInvariants()
	return true, nil
}

// completeSwap finishes a compaction swap interrupted by a crash: name is "<base>.log.swap", a
// complete cleaned segment replacing every segment whose base lies in [base, its last offset].
func (l *Log) completeSwap(name string) error {
	base, ok := parseSegmentName(strings.TrimSuffix(name, swapSuffix), logSuffix)
	if !ok {
		return nil
	}
	swap := filepath.Join(l.dir, name)
	f, err := os.Open(swap)
	if err != nil {
		return fmt.Errorf("finish compaction swap: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("finish compaction swap: %w", err)
	}
	tmp := &segment{base: base, logPath: swap, ref: newFileRef(f)}
	last := base
	_, err = scanSegment(tmp, 0, st.Size(), false, func(h BatchHeader, _ int64, _ []byte) { last = h.LastOffset() })
	tmp.ref.release()
	if err != nil && !errors.Is(err, ErrCorrupt) {
		return fmt.Errorf("finish compaction swap: %w", err)
	}
	ents, err := os.ReadDir(l.dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if b, ok := parseSegmentName(e.Name(), logSuffix); ok && b > base && b <= last {
			_ = os.Remove(filepath.Join(l.dir, e.Name()))
		}
		for _, suf := range []string{indexSuffix, timeIndexSuffix} {
			if b, ok := parseSegmentName(e.Name(), suf); ok && b >= base && b <= last {
				_ = os.Remove(filepath.Join(l.dir, e.Name()))
			}
		}
	}
	final := filepath.Join(l.dir, segmentName(base)+logSuffix)
	if err := os.Rename(swap, final); err != nil {
		return fmt.Errorf("finish compaction swap: %w", err)
	}
	l.logger.Info("finished interrupted compaction swap", "file", final)
	return syncDir(l.dir)
}

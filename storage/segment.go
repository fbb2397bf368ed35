package storage

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// File name suffixes of a segment, as Kafka names them.
const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
	snapshotSuffix  = ".snapshot"

	offsetEntrySize = 8  // int32 relative offset, int32 position
	timeEntrySize   = 12 // int64 timestamp, int32 relative offset
)

// segmentName is the 20-digit zero-padded base offset Kafka uses for every file of a segment.
func segmentName(base int64) string { return fmt.Sprintf("%020d", base) }

// parseSegmentName returns the base offset of a file named <20 digits><suffix>.
func parseSegmentName(name, suffix string) (int64, bool) {
	if len(name) != 20+len(suffix) || name[20:] != suffix {
		return 0, false
	}
	v, err := strconv.ParseInt(name[:20], 10, 64)
	if err != nil || v < 0 {
		return 0, false
	}
	return v, true
}

// fileRef shares one open file between a segment and the Slices read from it, so a segment deleted by
// retention or replaced by compaction stays readable until the last Slice is released.
// Invariant: the file is closed exactly when refs drops to zero; acquire never resurrects it.
type fileRef struct {
	f    *os.File
	refs atomic.Int64
}

func newFileRef(f *os.File) *fileRef {
	r := &fileRef{f: f}
	r.refs.Store(1)
	return r
}

func (r *fileRef) acquire() bool {
	for {
		n := r.refs.Load()
		if n <= 0 {
			return false
		}
		if r.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (r *fileRef) release() {
	if r.refs.Add(-1) == 0 {
		_ = r.f.Close()
	}
}

// offsetEntry maps the last offset of a batch (relative to the segment base) to its byte position.
type offsetEntry struct {
	rel int32
	pos int32
}

// timeEntry records that every batch up to and including the one whose last offset is base+rel has a
// max timestamp <= ts, and that this batch reached ts.
type timeEntry struct {
	ts  int64
	rel int32
}

// segIndex is an immutable snapshot of a segment's in-memory indexes. The writer publishes a new one
// after each append; readers load it with no lock. Slices are only ever appended to (never rewritten
// in place below their length), so sharing backing arrays between snapshots is safe.
type segIndex struct {
	off      []offsetEntry
	tim      []timeEntry
	maxTs    int64 // largest batch max timestamp seen, -1 when none
	maxTsOff int64 // absolute last offset of the batch holding maxTs, -1 when none
}

// segment is one <base>.log file with its indexes.
//
// Ownership: base, logPath and ref are immutable. size, idx are written only by the Log writer (holding
// Log.mu) or, for idx, by a lazy load under idxMu, and read lock-free by readers. The writer-only fields
// below are guarded by Log.mu.
type segment struct {
	base    int64
	logPath string
	ref     *fileRef

	// size is the number of bytes of complete batches readers may see.
	// Invariant: every offset-index position is < size once published; the writer stores size before idx.
	size atomic.Int64

	idxMu sync.Mutex // guards lazy loading/rebuilding of idx and txn, and the deleted flag
	idx   atomic.Pointer[segIndex]
	txn   atomic.Pointer[[]AbortedTxn] // aborted transactions whose marker is here; nil until loaded
	// deleted is set (under idxMu) when the segment's files are removed, so a concurrent lazy rebuild does
	// not recreate index files.
	deleted bool

	// Writer-only (Log.mu): open index files of the active segment and index cadence.
	offFile, timeFile *os.File
	// pendingOff and pendingTim are encoded index entries not yet written to offFile and timeFile.
	// Appends collect them and write them in one call per file once indexFlushBytes have gathered,
	// and closeWriterFiles (roll, Close, truncation) writes the rest. Readers use the in-memory index,
	// so only a reopen reads the files, and a crash that loses pending entries leaves index files
	// shorter than the log, which recovery rebuilds (it rebuilds the segments from the recovery point,
	// and rolled segments were flushed and fsynced by roll).
	pendingOff, pendingTim []byte
	bytesSinceIndex        int
	// writebackFrom is where the log bytes not yet handed to early writeback begin (see
	// startWritebackTo); set when the segment becomes the writer, so it also follows truncations, which
	// close the writer files.
	writebackFrom int64
	created       time.Time // for segment.ms; file mtime for segments found on disk
}

func (s *segment) indexPath() string {
	return filepath.Join(filepath.Dir(s.logPath), segmentName(s.base)+indexSuffix)
}

func (s *segment) timeIndexPath() string {
	return filepath.Join(filepath.Dir(s.logPath), segmentName(s.base)+timeIndexSuffix)
}

// openSegment opens an existing or new segment log file read-write.
func openSegment(dir string, base int64, create bool) (*segment, error) {
	p := filepath.Join(dir, segmentName(base)+logSuffix)
	flag := os.O_RDWR
	if create {
		flag |= os.O_CREATE
	}
	f, err := os.OpenFile(p, flag, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open segment %s: %w", p, err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("stat segment %s: %w", p, err)
	}
	s := &segment{base: base, logPath: p, ref: newFileRef(f), created: st.ModTime()}
	s.size.Store(st.Size())
	return s, nil
}

// readHeaderAt reads and parses the batch header at pos, checking that the batch fits below end.
func (s *segment) readHeaderAt(pos, end int64) (BatchHeader, error) {
	var buf [BatchHeaderSize]byte
	if end-pos < BatchHeaderSize {
		return BatchHeader{}, &CorruptError{File: s.logPath, Position: pos, Err: ErrTornBatch}
	}
	if _, err := s.ref.f.ReadAt(buf[:], pos); err != nil {
		if errors.Is(err, io.EOF) {
			return BatchHeader{}, &CorruptError{File: s.logPath, Position: pos, Err: ErrTornBatch}
		}
		return BatchHeader{}, fmt.Errorf("read segment %s at %d: %w", s.logPath, pos, err)
	}
	h, err := ParseBatchHeader(buf[:])
	if err != nil {
		return h, &CorruptError{File: s.logPath, Position: pos, Err: err}
	}
	if int64(h.Size()) > end-pos {
		return h, &CorruptError{File: s.logPath, Position: pos, Err: ErrTornBatch}
	}
	if h.BaseOffset < s.base || h.LastOffset()-s.base > 1<<31-1 {
		return h, &CorruptError{File: s.logPath, Position: pos,
			Err: fmt.Errorf("%w: base offset %d outside segment %d", ErrInvalidBatch, h.BaseOffset, s.base)}
	}
	return h, nil
}

// index returns the segment's indexes, loading them from disk (and rebuilding them from the log if the
// files are missing or fail sanity checks) on first use. Open stays cheap because of this laziness.
func (s *segment) index(interval int) (*segIndex, error) {
	if p := s.idx.Load(); p != nil {
		return p, nil
	}
	s.idxMu.Lock()
	defer s.idxMu.Unlock()
	if p := s.idx.Load(); p != nil {
		return p, nil
	}
	size := s.size.Load()
	idx, ok := s.loadIndexFiles(size)
	if !ok {
		built, _, err := buildIndex(s, size, interval, true)
		if err != nil && !errors.Is(err, ErrCorrupt) {
			return nil, err
		}
		idx = built
		if !s.deleted {
			// Best effort: a failure here only costs another rebuild next time.
			_ = writeIndexFiles(s, idx)
		}
	}
	s.idx.Store(idx)
	return idx, nil
}

// loadIndexFiles reads and sanity-checks the index files. ok is false when they must be rebuilt.
func (s *segment) loadIndexFiles(size int64) (*segIndex, bool) {
	ob, err1 := os.ReadFile(s.indexPath())
	tb, err2 := os.ReadFile(s.timeIndexPath())
	if size == 0 {
		return &segIndex{maxTs: -1, maxTsOff: -1}, true
	}
	if err1 != nil || err2 != nil {
		return nil, false
	}
	off, err := decodeOffsetIndex(ob, size)
	if err != nil {
		return nil, false
	}
	tim, err := decodeTimeIndex(tb)
	if err != nil || len(tim) == 0 {
		// A non-empty segment always has a final time entry (written at roll and close), so an empty
		// time index means the file was lost: rebuild to learn the segment's max timestamp.
		return nil, false
	}
	last := tim[len(tim)-1]
	return &segIndex{off: off, tim: tim, maxTs: last.ts, maxTsOff: s.base + int64(last.rel)}, true
}

// decodeOffsetIndex parses an .index file for a segment of logSize bytes, requiring strictly increasing
// offsets and positions inside the log.
func decodeOffsetIndex(b []byte, logSize int64) ([]offsetEntry, error) {
	if len(b)%offsetEntrySize != 0 {
		return nil, fmt.Errorf("%w: index size %d not a multiple of %d", ErrCorrupt, len(b), offsetEntrySize)
	}
	out := make([]offsetEntry, 0, len(b)/offsetEntrySize)
	for i := 0; i < len(b); i += offsetEntrySize {
		e := offsetEntry{rel: int32(binary.BigEndian.Uint32(b[i:])), pos: int32(binary.BigEndian.Uint32(b[i+4:]))}
		if e.rel < 0 || e.pos <= 0 || int64(e.pos) >= logSize {
			return nil, fmt.Errorf("%w: index entry %d (%d, %d) out of bounds", ErrCorrupt, i/offsetEntrySize, e.rel, e.pos)
		}
		if n := len(out); n > 0 && (e.rel <= out[n-1].rel || e.pos <= out[n-1].pos) {
			return nil, fmt.Errorf("%w: index entry %d not increasing", ErrCorrupt, i/offsetEntrySize)
		}
		out = append(out, e)
	}
	return out, nil
}

// decodeTimeIndex parses a .timeindex file, requiring strictly increasing timestamps and
// non-decreasing offsets.
func decodeTimeIndex(b []byte) ([]timeEntry, error) {
	if len(b)%timeEntrySize != 0 {
		return nil, fmt.Errorf("%w: time index size %d not a multiple of %d", ErrCorrupt, len(b), timeEntrySize)
	}
	out := make([]timeEntry, 0, len(b)/timeEntrySize)
	for i := 0; i < len(b); i += timeEntrySize {
		e := timeEntry{ts: int64(binary.BigEndian.Uint64(b[i:])), rel: int32(binary.BigEndian.Uint32(b[i+8:]))}
		if e.rel < 0 {
			return nil, fmt.Errorf("%w: time index entry %d negative offset", ErrCorrupt, i/timeEntrySize)
		}
		if n := len(out); n > 0 && (e.ts <= out[n-1].ts || e.rel < out[n-1].rel) {
			return nil, fmt.Errorf("%w: time index entry %d not increasing", ErrCorrupt, i/timeEntrySize)
		}
		out = append(out, e)
	}
	return out, nil
}

// writeIndexFiles replaces both index files with the contents of idx.
func writeIndexFiles(s *segment, idx *segIndex) error {
	if err := writeFileIfChanged(s.indexPath(), encodeOffsetEntries(idx.off)); err != nil {
		return fmt.Errorf("write index: %w", err)
	}
	if err := writeFileIfChanged(s.timeIndexPath(), encodeTimeEntries(idx.tim)); err != nil {
		return fmt.Errorf("write time index: %w", err)
	}
	return nil
}

// writeFileIfChanged writes data to path unless the file already holds exactly that. Recovery rebuilds
// indexes that are usually intact, and ext4 flushes a file truncated and rewritten at close
// (auto_da_alloc), which made reopening many partitions after a crash slow.
func writeFileIfChanged(path string, data []byte) error {
	if cur, err := os.ReadFile(path); err == nil && bytes.Equal(cur, data) {
		return nil
	}
	return os.WriteFile(path, data, 0o644)
}

func encodeOffsetEntries(es []offsetEntry) []byte {
	return appendOffsetEntries(make([]byte, 0, len(es)*offsetEntrySize), es)
}

func appendOffsetEntries(b []byte, es []offsetEntry) []byte {
	for _, e := range es {
		b = binary.BigEndian.AppendUint32(b, uint32(e.rel))
		b = binary.BigEndian.AppendUint32(b, uint32(e.pos))
	}
	return b
}

func encodeTimeEntries(es []timeEntry) []byte {
	return appendTimeEntries(make([]byte, 0, len(es)*timeEntrySize), es)
}

func appendTimeEntries(b []byte, es []timeEntry) []byte {
	for _, e := range es {
		b = binary.BigEndian.AppendUint64(b, uint64(e.ts))
		b = binary.BigEndian.AppendUint32(b, uint32(e.rel))
	}
	return b
}

// indexBuilder applies Kafka's index cadence: an offset entry (batch last offset -> batch position) for
// the first batch after more than interval bytes, and with it a time entry when the max timestamp grew.
type indexBuilder struct {
	base     int64
	interval int
	since    int
	idx      segIndex
}

// add accounts for one batch at pos; it reports whether new entries were added.
func (b *indexBuilder) add(h BatchHeader, pos int64) (newOff, newTim bool) {
	if h.MaxTimestamp > b.idx.maxTs {
		b.idx.maxTs, b.idx.maxTsOff = h.MaxTimestamp, h.LastOffset()
	}
	if b.since > b.interval {
		b.idx.off = append(b.idx.off, offsetEntry{rel: int32(h.LastOffset() - b.base), pos: int32(pos)})
		newOff = true
		newTim = b.maybeTime()
		b.since = 0
	}
	b.since += h.Size()
	return newOff, newTim
}

// maybeTime appends a time entry if the max timestamp grew since the last one.
func (b *indexBuilder) maybeTime() bool {
	if b.idx.maxTs < 0 && b.idx.maxTsOff < 0 {
		return false
	}
	if n := len(b.idx.tim); n > 0 && b.idx.tim[n-1].ts >= b.idx.maxTs {
		return false
	}
	b.idx.tim = append(b.idx.tim, timeEntry{ts: b.idx.maxTs, rel: int32(b.idx.maxTsOff - b.base)})
	return true
}

// buildIndex scans the segment's log from the start up to size, verifying every batch (CRC too when
// verify), and returns the indexes of the valid prefix and its length. A *CorruptError is returned with
// the index of the valid prefix when an invalid batch is found.
func buildIndex(s *segment, size int64, interval int, verify bool) (*segIndex, int64, error) {
	b := indexBuilder{base: s.base, interval: interval, idx: segIndex{maxTs: -1, maxTsOff: -1}}
	valid, err := scanSegment(s, 0, size, verify, func(h BatchHeader, pos int64, _ []byte) {
		b.add(h, pos)
	})
	b.maybeTime()
	idx := b.idx
	return &idx, valid, err
}

// scanSegment reads the batches in [start, end) sequentially and calls fn for each valid one (with its
// bytes when verify is set; the slice is reused). It stops at the first invalid batch and returns the
// position where valid data ends and a *CorruptError describing it; err is nil when the range is clean.
func scanSegment(s *segment, start, end int64, verify bool, fn func(h BatchHeader, pos int64, batch []byte)) (int64, error) {
	if !verify {
		pos := start
		for pos < end {
			h, err := s.readHeaderAt(pos, end)
			if err != nil {
				return pos, err
			}
			fn(h, pos, nil)
			pos += int64(h.Size())
		}
		return pos, nil
	}
	r := bufio.NewReaderSize(io.NewSectionReader(s.ref.f, start, end-start), int(min(end-start+16, 1<<20)))
	var buf []byte
	pos := start
	prevLast := int64(-1)
	for pos < end {
		if end-pos < BatchHeaderSize {
			return pos, &CorruptError{File: s.logPath, Position: pos, Err: ErrTornBatch}
		}
		if cap(buf) < BatchHeaderSize {
			buf = make([]byte, 64<<10)
		}
		buf = buf[:BatchHeaderSize]
		if _, err := io.ReadFull(r, buf); err != nil {
			return pos, ioOrTorn(s, pos, err)
		}
		h, err := ParseBatchHeader(buf)
		if err != nil {
			return pos, &CorruptError{File: s.logPath, Position: pos, Err: err}
		}
		if int64(h.Size()) > end-pos {
			return pos, &CorruptError{File: s.logPath, Position: pos, Err: ErrTornBatch}
		}
		if h.BaseOffset < s.base || h.BaseOffset <= prevLast || h.LastOffset()-s.base > 1<<31-1 {
			return pos, &CorruptError{File: s.logPath, Position: pos,
				Err: fmt.Errorf("%w: offset %d out of order (previous %d, segment %d)", ErrInvalidBatch, h.BaseOffset, prevLast, s.base)}
		}
		if cap(buf) < h.Size() {
			nb := make([]byte, h.Size())
			copy(nb, buf)
			buf = nb
		}
		buf = buf[:h.Size()]
		if _, err := io.ReadFull(r, buf[BatchHeaderSize:]); err != nil {
			return pos, ioOrTorn(s, pos, err)
		}
		if crc := crc32.Checksum(buf[offAttributes:], castagnoli); crc != h.CRC {
			return pos, &CorruptError{File: s.logPath, Position: pos,
				Err: fmt.Errorf("%w: computed %08x, header says %08x", ErrCRCMismatch, crc, h.CRC)}
		}
		fn(h, pos, buf)
		prevLast = h.LastOffset()
		pos += int64(h.Size())
	}
	return pos, nil
}

func ioOrTorn(s *segment, pos int64, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &CorruptError{File: s.logPath, Position: pos, Err: ErrTornBatch}
	}
	return fmt.Errorf("read segment %s at %d: %w", s.logPath, pos, err)
}

// findBatch returns the position and header of the first batch in the segment whose last offset is
// >= offset, scanning from the nearest index entry. found is false when no such batch lies below size.
func (s *segment) findBatch(offset int64, size int64, interval int) (int64, BatchHeader, bool, error) {
	idx, err := s.index(interval)
	if err != nil {
		return 0, BatchHeader{}, false, err
	}
	pos := int64(0)
	// Largest entry whose batch last offset is <= offset: the wanted batch is at or after it.
	lo, hi := 0, len(idx.off)
	for lo < hi {
		m := (lo + hi) / 2
		if s.base+int64(idx.off[m].rel) <= offset {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo > 0 && int64(idx.off[lo-1].pos) < size {
		pos = int64(idx.off[lo-1].pos)
	}
	for pos < size {
		h, err := s.readHeaderAt(pos, size)
		if err != nil {
			return pos, h, false, err
		}
		if h.LastOffset() >= offset {
			return pos, h, true, nil
		}
		pos += int64(h.Size())
	}
	return pos, BatchHeader{}, false, nil
}

// timePosition returns a byte position from which a scan finds the first batch with max timestamp >= ts.
func (s *segment) timePosition(ts int64, size int64, interval int) (int64, error) {
	idx, err := s.index(interval)
	if err != nil {
		return 0, err
	}
	// Last time entry with timestamp < ts: every batch up to its offset has max timestamp < ts.
	lo, hi := 0, len(idx.tim)
	for lo < hi {
		m := (lo + hi) / 2
		if idx.tim[m].ts < ts {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return 0, nil
	}
	after := s.base + int64(idx.tim[lo-1].rel) + 1
	pos, _, found, err := s.findBatch(after, size, interval)
	if err != nil || !found {
		return 0, err
	}
	return pos, nil
}

// indexFlushBytes is how many bytes of encoded index entries an active segment gathers before it writes
// them to its index files.
const indexFlushBytes = 4096

// queueIndexEntries encodes new index entries for the index files, writing them out once enough have
// gathered. Log.mu held.
func (s *segment) queueIndexEntries(off []offsetEntry, tim []timeEntry) error {
	s.pendingOff = appendOffsetEntries(s.pendingOff, off)
	s.pendingTim = appendTimeEntries(s.pendingTim, tim)
	if len(s.pendingOff)+len(s.pendingTim) < indexFlushBytes {
		return nil
	}
	return s.flushIndexEntries()
}

// flushIndexEntries writes the pending index entries, one write per file. On error the entries are
// dropped: the index files are then shorter than the in-memory index, which only costs a rebuild on
// recovery. Log.mu held.
func (s *segment) flushIndexEntries() error {
	var first error
	if len(s.pendingOff) > 0 && s.offFile != nil {
		if _, err := s.offFile.Write(s.pendingOff); err != nil {
			first = fmt.Errorf("write index of %s: %w", s.logPath, err)
		}
	}
	if len(s.pendingTim) > 0 && s.timeFile != nil {
		if _, err := s.timeFile.Write(s.pendingTim); err != nil && first == nil {
			first = fmt.Errorf("write time index of %s: %w", s.logPath, err)
		}
	}
	s.pendingOff, s.pendingTim = s.pendingOff[:0], s.pendingTim[:0]
	return first
}

// closeWriterFiles writes the pending index entries and closes the active segment's index file handles.
// Log.mu held.
func (s *segment) closeWriterFiles() error {
	first := s.flushIndexEntries()
	s.pendingOff, s.pendingTim = nil, nil
	for _, f := range []*os.File{s.offFile, s.timeFile} {
		if f != nil {
			if err := f.Close(); err != nil && first == nil {
				first = err
			}
		}
	}
	s.offFile, s.timeFile = nil, nil
	return first
}

// writebackStride is how many bytes of whole pages gather before an append hands them to early
// writeback. Each hand-off is a sync_file_range call that builds and submits its own I/O: one per 8 KB
// write more than doubled the kernel's CPU per byte in a probe with fsyncs running beside it, and
// BenchmarkAppend always-group/4KiB spends about a fifth less CPU per GB with the stride.
const writebackStride = 64 << 10

// pageSize is the page-cache granule early writeback aligns to. A page the log's end falls inside is
// left to fsync: the next append changes it again, and writing it now would write it twice.
const pageSize = 4096

// startWritebackTo starts early writeback of the whole pages between writebackFrom and end once a
// stride of them has gathered. Log.mu held.
func (s *segment) startWritebackTo(end int64) {
	end &^= pageSize - 1
	if end-s.writebackFrom < writebackStride {
		return
	}
	startWriteback(s.ref.f, s.writebackFrom, end-s.writebackFrom)
	s.writebackFrom = end
}

// syncIndexFiles fdatasyncs the active segment's index files if open. Log.mu held.
func (s *segment) syncIndexFiles() error {
	for _, f := range []*os.File{s.offFile, s.timeFile} {
		if f != nil {
			if err := f.Sync(); err != nil {
				return fmt.Errorf("sync index of %s: %w", s.logPath, err)
			}
		}
	}
	return nil
}

// openWriterFiles opens the index files for appending. Log.mu held.
func (s *segment) openWriterFiles() error {
	if s.offFile != nil {
		return nil
	}
	of, err := os.OpenFile(s.indexPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open index: %w", err)
	}
	tf, err := os.OpenFile(s.timeIndexPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		_ = of.Close()
		return fmt.Errorf("open time index: %w", err)
	}
	s.offFile, s.timeFile = of, tf
	return nil
}

// removeFiles deletes the segment's files (log first, so a crash midway leaves only orphan indexes,
// which Open deletes) and drops the segment's reference to the log file.
func (s *segment) removeFiles() error {
	s.idxMu.Lock()
	s.deleted = true
	s.idxMu.Unlock()
	_ = s.closeWriterFiles()
	err := os.Remove(s.logPath)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove segment %s: %w", s.logPath, err)
	}
	_ = os.Remove(s.indexPath())
	_ = os.Remove(s.timeIndexPath())
	_ = os.Remove(s.txnIndexPath())
	s.ref.release()
	return nil
}

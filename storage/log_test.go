package storage

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestParseBatchHeader(t *testing.T) {
	good := buildTestBatch(batchSpec{base: 5, n: 3, ts: 1000, pid: 7, epoch: 1, seq: 10, txn: true})
	h, err := ParseBatchHeader(good)
	if err != nil {
		t.Fatal(err)
	}
	if h.BaseOffset != 5 || h.LastOffset() != 7 || h.NumRecords != 3 || h.Size() != len(good) ||
		h.ProducerID != 7 || h.BaseSequence != 10 || !h.IsTransactional() || h.IsControl() ||
		h.MaxTimestamp != 1002 || h.Compression() != 0 || h.TimestampType() != 0 {
		t.Fatalf("header %+v", h)
	}
	if err := VerifyCRC(good); err != nil {
		t.Fatal(err)
	}
	mut := func(f func(b []byte)) []byte { b := bytes.Clone(good); f(b); return b }
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"short", good[:60], ErrTornBatch},
		{"magic", mut(func(b []byte) { b[offMagic] = 1 }), ErrInvalidBatch},
		{"length", mut(func(b []byte) { b[offLength+3] = 3; b[offLength+2] = 0 }), ErrInvalidBatch},
		{"delta", mut(func(b []byte) { b[offLastOffsetDelta] = 0x80 }), ErrInvalidBatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseBatchHeader(tc.b); !errors.Is(err, tc.want) {
				t.Fatalf("got %v want %v", err, tc.want)
			}
		})
	}
	bad := mut(func(b []byte) { b[len(b)-1] ^= 1 })
	if err := VerifyCRC(bad); !errors.Is(err, ErrCRCMismatch) {
		t.Fatalf("crc: %v", err)
	}
	// Base offset and leader epoch lie outside the CRC.
	re := bytes.Clone(good)
	SetBaseOffset(re, 99)
	SetPartitionLeaderEpoch(re, 4)
	if err := VerifyCRC(re); err != nil {
		t.Fatal(err)
	}
	if h, _ := ParseBatchHeader(re); h.BaseOffset != 99 || h.PartitionLeaderEpoch != 4 {
		t.Fatalf("rewrite: %+v", h)
	}
}

func TestSplitBatches(t *testing.T) {
	a := buildTestBatch(batchSpec{base: 0, n: 2})
	b := buildTestBatch(batchSpec{base: 2, n: 3})
	all := append(bytes.Clone(a), b...)
	tests := []struct {
		name  string
		in    []byte
		count int
		want  error
	}{
		{"two", all, 2, nil},
		{"empty", nil, 0, nil},
		{"torn", all[:len(all)-1], 1, ErrTornBatch},
		{"torn header", all[:len(a)+10], 1, ErrTornBatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := 0
			err := SplitBatches(tc.in, func(BatchHeader, []byte) bool { n++; return true })
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) || n != tc.count {
				t.Fatalf("n=%d err=%v", n, err)
			}
		})
	}
}

func TestAppendReadReopen(t *testing.T) {
	dir := t.TempDir()
	cfg := smallConfig()
	l := mustOpen(t, dir, cfg)
	var want []byte
	off := int64(0)
	for i := 0; i < 50; i++ {
		b := buildTestBatch(batchSpec{base: off, n: 1 + i%4, ts: int64(1000 + i*10), valSize: 50})
		info := mustAppend(t, l, b)
		if info.FirstOffset != off {
			t.Fatalf("first offset %d want %d", info.FirstOffset, off)
		}
		off = info.LastOffset + 1
		want = append(want, b...)
	}
	if l.EndOffset() != off {
		t.Fatalf("leo %d want %d", l.EndOffset(), off)
	}
	if l.NumSegments() < 2 {
		t.Fatalf("expected rolls, have %d segments", l.NumSegments())
	}
	if got := readAll(t, l, 0); !bytes.Equal(got, want) {
		t.Fatalf("read back differs: %d vs %d bytes", len(got), len(want))
	}
	check := func(l *Log) {
		t.Helper()
		for o := int64(0); o < off; o++ {
			sl, err := l.Read(o, 1, off)
			if err != nil {
				t.Fatalf("read %d: %v", o, err)
			}
			b, _ := sl.Bytes()
			sl.Release()
			h, err := ParseBatchHeader(b)
			if err != nil || h.BaseOffset > o || h.LastOffset() < o || len(b) != h.Size() {
				t.Fatalf("read %d: header %+v err %v len %d", o, h, err, len(b))
			}
		}
		if sl, err := l.Read(off, 100, off); err != nil || sl.Len() != 0 {
			t.Fatalf("read at end: %v %d", err, sl.Len())
		}
		if _, err := l.Read(off+1, 100, off); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Fatalf("read past end: %v", err)
		}
	}
	check(l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, cleanMarkerFile)); err != nil {
		t.Fatalf("no clean marker: %v", err)
	}
	l = mustOpen(t, dir, cfg)
	if l.EndOffset() != off {
		t.Fatalf("clean reopen leo %d want %d", l.EndOffset(), off)
	}
	check(l)
	if got := readAll(t, l, 0); !bytes.Equal(got, want) {
		t.Fatal("read back after reopen differs")
	}
	// Unclean: append, crash, reopen.
	b := buildTestBatch(batchSpec{base: off, n: 2, ts: 5000})
	mustAppend(t, l, b)
	want = append(want, b...)
	off += 2
	if _, err := os.Stat(filepath.Join(dir, cleanMarkerFile)); !os.IsNotExist(err) {
		t.Fatalf("clean marker survived a write: %v", err)
	}
	crash(l)
	l = mustOpen(t, dir, cfg)
	defer l.Close()
	if l.EndOffset() != off {
		t.Fatalf("unclean reopen leo %d want %d", l.EndOffset(), off)
	}
	check(l)
	if got := readAll(t, l, 0); !bytes.Equal(got, want) {
		t.Fatal("read back after crash differs")
	}
}

func TestReadLimits(t *testing.T) {
	l := mustOpen(t, t.TempDir(), DefaultConfig())
	defer l.Close()
	var sizes []int
	for i := int64(0); i < 10; i++ {
		b := buildTestBatch(batchSpec{base: i * 10, n: 10, valSize: 100})
		sizes = append(sizes, len(b))
		mustAppend(t, l, b)
	}
	tests := []struct {
		name           string
		off            int64
		max            int
		upTo           int64
		batches        int
		firstBase      int64
		wantOutOfRange bool
	}{
		{"one batch min", 0, 1, 100, 1, 0, false},
		{"two batches", 5, sizes[0] + sizes[1], 100, 2, 0, false},
		{"upTo stops", 0, 1 << 20, 30, 3, 0, false},
		{"upTo inside batch", 0, 1 << 20, 25, 2, 0, false},
		{"nothing below upTo", 20, 1 << 20, 25, 0, 0, false},
		{"mid", 55, 1 << 20, 100, 5, 50, false},
		{"end", 100, 1 << 20, 100, 0, 0, false},
		{"past", 101, 1 << 20, 100, 0, 0, true},
		{"negative", -1, 1 << 20, 100, 0, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sl, err := l.Read(tc.off, tc.max, tc.upTo)
			if tc.wantOutOfRange {
				if !errors.Is(err, ErrOffsetOutOfRange) {
					t.Fatalf("err %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer sl.Release()
			b, err := sl.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			var first int64 = -1
			_ = SplitBatches(b, func(h BatchHeader, _ []byte) bool {
				if first < 0 {
					first = h.BaseOffset
				}
				n++
				return true
			})
			if n != tc.batches || (n > 0 && first != tc.firstBase) {
				t.Fatalf("got %d batches first %d", n, first)
			}
			var buf bytes.Buffer
			if w, err := sl.WriteTo(&buf); err != nil || int(w) != len(b) || !bytes.Equal(buf.Bytes(), b) {
				t.Fatalf("WriteTo %d %v", w, err)
			}
		})
	}
}

// Read, which skips ahead with the offset index, returns exactly what a
// header-by-header walk of the segment would: for random offsets, byte
// limits and upper bounds over batches of mixed sizes in several segments.
func TestReadMatchesWalk(t *testing.T) {
	cfg := DefaultConfig()
	cfg.SegmentBytes = 64 << 10
	l := mustOpen(t, t.TempDir(), cfg)
	defer l.Close()
	type ref struct {
		base, last int64
		seg        int64 // base offset of the segment holding the batch
		b          []byte
	}
	rng := rand.New(rand.NewPCG(7, 11))
	var batches []ref
	next := int64(0)
	for range 200 {
		n := 1 + rng.IntN(8)
		b := buildTestBatch(batchSpec{base: next, n: n, valSize: rng.IntN(3000)})
		mustAppend(t, l, b)
		batches = append(batches, ref{base: next, last: next + int64(n) - 1, b: b})
		next += int64(n) + int64(rng.IntN(2)) // gaps, as in compacted logs
	}
	segs := *l.segs.Load()
	if len(segs) < 3 {
		t.Fatalf("want several segments, got %d", len(segs))
	}
	for i := range batches {
		for _, sg := range segs {
			if sg.base <= batches[i].base {
				batches[i].seg = sg.base
			}
		}
	}
	walk := func(offset int64, maxBytes int, upTo int64) []byte {
		i := 0
		for i < len(batches) && batches[i].last < offset {
			i++
		}
		var out []byte
		for j := i; j < len(batches); j++ {
			r := batches[j]
			if r.last >= upTo || r.seg != batches[i].seg || (j > i && len(out)+len(r.b) > maxBytes) {
				break
			}
			out = append(out, r.b...)
		}
		return out
	}
	for k := range 3000 {
		offset := rng.Int64N(next)
		maxBytes := 1 + rng.IntN(40<<10)
		upTo := offset + rng.Int64N(next-offset+1)
		if k%4 == 0 {
			upTo = next // the usual case: everything is below the high watermark
		}
		sl, err := l.Read(offset, maxBytes, upTo)
		if err != nil {
			t.Fatalf("Read(%d, %d, %d): %v", offset, maxBytes, upTo, err)
		}
		got, err := sl.Bytes()
		sl.Release()
		if err != nil {
			t.Fatal(err)
		}
		if want := walk(offset, maxBytes, upTo); !bytes.Equal(got, want) {
			t.Fatalf("Read(%d, %d, %d): %d bytes, walk gives %d", offset, maxBytes, upTo, len(got), len(want))
		}
	}
}

func TestAppendValidation(t *testing.T) {
	l := mustOpen(t, t.TempDir(), DefaultConfig())
	defer l.Close()
	mustAppend(t, l, buildTestBatch(batchSpec{base: 0, n: 5}))
	bad := buildTestBatch(batchSpec{base: 10, n: 1})
	bad[len(bad)-1] ^= 0xff
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"backwards", buildTestBatch(batchSpec{base: 3, n: 1}), ErrOffsetOutOfRange},
		{"crc", bad, ErrCRCMismatch},
		{"torn", buildTestBatch(batchSpec{base: 10, n: 2})[:70], ErrTornBatch},
		{"empty", nil, ErrInvalidBatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := l.Append(tc.b); !errors.Is(err, tc.want) {
				t.Fatalf("got %v want %v", err, tc.want)
			}
		})
	}
	// A gap is fine.
	info := mustAppend(t, l, buildTestBatch(batchSpec{base: 100, n: 2}))
	if info.FirstOffset != 100 || l.EndOffset() != 102 {
		t.Fatalf("gap append %+v leo %d", info, l.EndOffset())
	}
	if sl, err := l.Read(50, 100, 200); err != nil {
		t.Fatal(err)
	} else {
		b, _ := sl.Bytes()
		sl.Release()
		if h, _ := ParseBatchHeader(b); h.BaseOffset != 100 {
			t.Fatalf("read in gap returned %d", h.BaseOffset)
		}
	}
}

// AppendVerified skips only the CRC pass: every other check of Append still
// refuses bad input.
func TestAppendVerified(t *testing.T) {
	l := mustOpen(t, t.TempDir(), DefaultConfig())
	defer l.Close()
	if _, err := l.AppendVerified(buildTestBatch(batchSpec{base: 0, n: 5})); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"backwards", buildTestBatch(batchSpec{base: 3, n: 1}), ErrOffsetOutOfRange},
		{"torn", buildTestBatch(batchSpec{base: 10, n: 2})[:70], ErrTornBatch},
		{"empty", nil, ErrInvalidBatch},
	}
	for _, tc := range tests {
		if _, err := l.AppendVerified(tc.b); !errors.Is(err, tc.want) {
			t.Fatalf("%s: got %v want %v", tc.name, err, tc.want)
		}
	}
	// The caller vouched for the CRC, so a mismatch is stored as given (and
	// a later recovery scan would report it); Append would have refused it.
	bad := buildTestBatch(batchSpec{base: 5, n: 1})
	bad[len(bad)-1] ^= 0xff
	if _, err := l.Append(bad); !errors.Is(err, ErrCRCMismatch) {
		t.Fatalf("Append of a bad CRC: %v", err)
	}
	if _, err := l.AppendVerified(bad); err != nil {
		t.Fatalf("AppendVerified: %v", err)
	}
	if l.EndOffset() != 6 {
		t.Fatalf("end offset %d, want 6", l.EndOffset())
	}
}

func TestSyncGroupCommit(t *testing.T) {
	for _, pol := range []FsyncPolicy{FsyncAlways, FsyncInterval, FsyncNever} {
		t.Run(pol.String(), func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Fsync = pol
			cfg.FsyncInterval = 5 * time.Millisecond
			l := mustOpen(t, t.TempDir(), cfg)
			var wg sync.WaitGroup
			errs := make(chan error, 100)
			for i := int64(0); i < 100; i++ {
				info := mustAppend(t, l, buildTestBatch(batchSpec{base: i, n: 1}))
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs <- l.Sync(context.Background(), info.LastOffset)
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if pol == FsyncAlways && l.RecoveryPoint() != 100 {
				t.Fatalf("recovery point %d", l.RecoveryPoint())
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if err := l.Sync(context.Background(), 0); !errors.Is(err, ErrClosed) {
				t.Fatalf("sync after close: %v", err)
			}
		})
	}
}

func TestOffsetForTimestamp(t *testing.T) {
	cfg := smallConfig()
	l := mustOpen(t, t.TempDir(), cfg)
	defer l.Close()
	// batch i: offsets 3i..3i+2, timestamps 100i..100i+2; batch 7 has a high timestamp.
	for i := int64(0); i < 40; i++ {
		ts := 100 * i
		if i == 7 {
			ts = 10000
		}
		mustAppend(t, l, buildTestBatch(batchSpec{base: 3 * i, n: 3, ts: ts, valSize: 40}))
	}
	tests := []struct {
		ts    int64
		base  int64
		found bool
	}{
		{0, 0, true}, {2, 0, true}, {3, 3, true}, {150, 6, true}, {702, 21, true},
		{800, 21, true}, {3902, 21, true}, {10002, 21, true}, {10003, 0, false},
	}
	for _, tc := range tests {
		base, b, found, err := l.OffsetForTimestamp(tc.ts)
		if err != nil || found != tc.found || (found && base != tc.base) {
			t.Fatalf("ts %d: base %d found %v err %v", tc.ts, base, found, err)
		}
		if found {
			if h, err := ParseBatchHeader(b); err != nil || h.BaseOffset != base {
				t.Fatalf("batch bytes: %v", err)
			}
		}
	}
	ts, base, err := l.MaxTimestamp()
	if err != nil || ts != 10002 || base != 21 {
		t.Fatalf("max timestamp %d at %d: %v", ts, base, err)
	}
}

func TestAppendFarAheadOfEmptyLog(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, DefaultConfig())
	far := int64(1) << 40
	mustAppend(t, l, buildTestBatch(batchSpec{base: far, n: 2}))
	if l.NumSegments() != 1 || l.LogStartOffset() != far || l.EndOffset() != far+2 {
		t.Fatalf("segments %d, log start %d, end %d", l.NumSegments(), l.LogStartOffset(), l.EndOffset())
	}
	// And far ahead of a non-empty active segment: a roll, since relative offsets must fit in int32.
	mustAppend(t, l, buildTestBatch(batchSpec{base: 2 * far, n: 1}))
	if l.NumSegments() != 2 {
		t.Fatalf("segments %d", l.NumSegments())
	}
	l.Close()
	l = mustOpen(t, dir, DefaultConfig())
	defer l.Close()
	if l.LogStartOffset() != far || l.EndOffset() != 2*far+1 {
		t.Fatalf("after reopen: %d %d", l.LogStartOffset(), l.EndOffset())
	}
	sl, err := l.Read(far+5, 100, l.EndOffset())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := sl.Bytes()
	sl.Release()
	if h, _ := ParseBatchHeader(b); h.BaseOffset != 2*far {
		t.Fatalf("read in gap got %d", h.BaseOffset)
	}
}

// TestEarlyWritebackStride follows the active segment's early-writeback cursor: it starts at the page
// below the segment's end when the segment becomes the writer (so after a reopen or a truncation too),
// moves only in whole pages, and only once writebackStride of them have gathered, leaving less than a
// stride of whole pages behind it.
func TestEarlyWritebackStride(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.SegmentBytes = 64 << 20
	l := mustOpen(t, dir, cfg)
	off := int64(0)
	// appendUntil appends 1 KiB-value batches until the segment holds at least size bytes, checking
	// the cursor after each append.
	appendUntil := func(l *Log, size int64) {
		t.Helper()
		for l.active().size.Load() < size {
			info := mustAppend(t, l, buildTestBatch(batchSpec{base: off, n: 3, valSize: 1000}))
			off = info.LastOffset + 1
			s := l.active()
			whole := s.size.Load() &^ (pageSize - 1)
			if from := s.writebackFrom; from%pageSize != 0 || from > whole || whole-from >= writebackStride {
				t.Fatalf("writeback cursor at %d, segment size %d: want a page boundary less than %d below %d",
					from, s.size.Load(), writebackStride, whole)
			}
		}
	}
	appendUntil(l, writebackStride-pageSize)
	if got := l.active().writebackFrom; got != 0 {
		t.Fatalf("cursor at %d under a stride of whole pages, want 0", got)
	}
	appendUntil(l, 3*writebackStride+pageSize)
	if got := l.active().writebackFrom; got < 2*writebackStride {
		t.Fatalf("cursor at %d after 3 strides, want it moved", got)
	}
	size := l.active().size.Load()

	// A truncation closes the writer; the next append sets the cursor at or below the cut's page.
	cut := off / 2
	if err := l.TruncateTo(cut); err != nil {
		t.Fatal(err)
	}
	off = cut
	appendUntil(l, l.active().size.Load()+1)
	if got := l.active().size.Load(); got >= size {
		t.Fatalf("segment did not shrink: %d bytes before the cut, %d after", size, got)
	}
	appendUntil(l, size+writebackStride)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// After a reopen the first append starts from the page the segment ended in.
	l = mustOpen(t, dir, cfg)
	defer l.Close()
	end := l.active().size.Load()
	appendUntil(l, end+1)
	if got, want := l.active().writebackFrom, end&^(pageSize-1); got != want {
		t.Fatalf("cursor at %d after a reopen at %d bytes, want %d", got, end, want)
	}
}

package storage

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// fill appends n batches of 3 records each from offset 0 and returns their bytes.
func fill(t *testing.T, l *Log, n int, spec func(i int) batchSpec) [][]byte {
	t.Helper()
	var out [][]byte
	for i := 0; i < n; i++ {
		s := batchSpec{base: int64(3 * i), n: 3, ts: int64(1000 * i), valSize: 60}
		if spec != nil {
			s = spec(i)
		}
		b := buildTestBatch(s)
		mustAppend(t, l, b)
		out = append(out, b)
	}
	return out
}

func TestTruncateTo(t *testing.T) {
	tests := []struct {
		name    string
		to      int64
		wantLEO int64
		batches int // whole batches kept
	}{
		{"batch boundary", 30, 30, 10},
		{"mid batch", 31, 31, 10},
		{"segment start region", 3, 3, 1},
		{"zero", 0, 0, 0},
		{"beyond end is no-op", 500, 120, 40},
		{"last batch", 119, 119, 39},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := smallConfig()
			l := mustOpen(t, dir, cfg)
			bs := fill(t, l, 40, nil)
			l.SetHighWatermark(100)
			if err := l.TruncateTo(tc.to); err != nil {
				t.Fatal(err)
			}
			want := bytes.Join(bs[:tc.batches], nil)
			verify := func(l *Log) {
				t.Helper()
				if l.EndOffset() != tc.wantLEO {
					t.Fatalf("leo %d want %d", l.EndOffset(), tc.wantLEO)
				}
				if got := readAll(t, l, 0); !bytes.Equal(got, want) {
					t.Fatalf("content differs: %d vs %d bytes", len(got), len(want))
				}
				if l.HighWatermark() > l.EndOffset() {
					t.Fatalf("hw %d > leo %d", l.HighWatermark(), l.EndOffset())
				}
			}
			verify(l)
			// Appending after truncation continues at the new end.
			nb := buildTestBatch(batchSpec{base: l.EndOffset(), n: 2, ts: 7})
			mustAppend(t, l, nb)
			want = append(want, nb...)
			tc.wantLEO += 2
			verify(l)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = mustOpen(t, dir, cfg)
			verify(l)
			crash(l)
			l = mustOpen(t, dir, cfg)
			verify(l)
			l.Close()
		})
	}
}

func TestTruncateCrashBeforeClose(t *testing.T) {
	dir := t.TempDir()
	cfg := smallConfig()
	cfg.Fsync = FsyncAlways
	l := mustOpen(t, dir, cfg)
	bs := fill(t, l, 30, nil)
	if err := l.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if err := l.TruncateTo(45); err != nil {
		t.Fatal(err)
	}
	// New data at offsets the old recovery point covered; a crash must still recover it (the lowered
	// recovery point was checkpointed).
	nb := buildTestBatch(batchSpec{base: 45, n: 3})
	mustAppend(t, l, nb)
	crash(l)
	l = mustOpen(t, dir, cfg)
	defer l.Close()
	want := append(bytes.Join(bs[:15], nil), nb...)
	if got := readAll(t, l, 0); !bytes.Equal(got, want) || l.EndOffset() != 48 {
		t.Fatalf("leo %d, content equal %v", l.EndOffset(), bytes.Equal(got, want))
	}
}

func TestDeleteRecordsBefore(t *testing.T) {
	dir := t.TempDir()
	cfg := smallConfig()
	l := mustOpen(t, dir, cfg)
	fill(t, l, 40, nil)
	segs := l.NumSegments()
	if err := l.DeleteRecordsBefore(200); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("beyond end: %v", err)
	}
	if err := l.DeleteRecordsBefore(61); err != nil {
		t.Fatal(err)
	}
	if l.LogStartOffset() != 61 || l.NumSegments() >= segs {
		t.Fatalf("log start %d segments %d (was %d)", l.LogStartOffset(), l.NumSegments(), segs)
	}
	if _, err := l.Read(60, 10, 200); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below start: %v", err)
	}
	sl, err := l.Read(61, 10, 200)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := sl.Bytes()
	sl.Release()
	if h, _ := ParseBatchHeader(b); h.BaseOffset != 60 {
		t.Fatalf("first batch %d", h.BaseOffset)
	}
	if err := l.DeleteRecordsBefore(10); err != nil || l.LogStartOffset() != 61 {
		t.Fatalf("going back: %v %d", err, l.LogStartOffset())
	}
	crash(l)
	l = mustOpen(t, dir, cfg)
	if l.LogStartOffset() != 61 {
		t.Fatalf("after crash log start %d", l.LogStartOffset())
	}
	l.Close()
	l = mustOpen(t, dir, cfg)
	defer l.Close()
	if l.LogStartOffset() != 61 || l.EndOffset() != 120 {
		t.Fatalf("after reopen %d %d", l.LogStartOffset(), l.EndOffset())
	}
}

func TestRetention(t *testing.T) {
	day := int64(24 * time.Hour / time.Millisecond)
	now := time.UnixMilli(100 * day)
	tests := []struct {
		name     string
		ms       time.Duration
		bytes    int64
		compact  bool
		deleted  bool // some segments deleted
		keepSegs int  // exact expected segments when > 0
	}{
		{"time keeps recent", 200 * 24 * time.Hour, -1, false, false, 0},
		{"time deletes old", 50 * 24 * time.Hour, -1, false, true, 0},
		{"time deletes all but active", time.Millisecond, -1, false, true, 1},
		{"bytes", -1, 5000, false, true, 0},
		{"compact only keeps", time.Millisecond, 1, true, false, 0},
		{"infinite", -1, -1, false, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := smallConfig()
			cfg.RetentionMS, cfg.RetentionBytes = tc.ms, tc.bytes
			if tc.compact {
				cfg.Compact, cfg.Delete = true, false
			}
			l := mustOpen(t, t.TempDir(), cfg)
			defer l.Close()
			// Timestamps one day apart from day 0 to day 79.
			fill(t, l, 80, func(i int) batchSpec {
				return batchSpec{base: int64(3 * i), n: 3, ts: int64(i) * day, valSize: 60}
			})
			before := l.NumSegments()
			n, err := l.EnforceRetention(now)
			if err != nil {
				t.Fatal(err)
			}
			if (n > 0) != tc.deleted || l.NumSegments() != before-n {
				t.Fatalf("deleted %d of %d", n, before)
			}
			if tc.keepSegs > 0 && l.NumSegments() != tc.keepSegs {
				t.Fatalf("segments %d", l.NumSegments())
			}
			segs := *l.segs.Load()
			if l.LogStartOffset() != segs[0].base {
				t.Fatalf("log start %d first segment %d", l.LogStartOffset(), segs[0].base)
			}
			if tc.bytes > 0 && l.Size() < tc.bytes {
				t.Fatalf("size %d below retention.bytes", l.Size())
			}
			if tc.ms > 0 && tc.deleted && tc.keepSegs == 0 {
				// First remaining segment must hold data younger than the limit.
				idx, _ := segs[0].index(cfg.IndexIntervalBytes)
				if idx.maxTs < now.Add(-tc.ms).UnixMilli() {
					t.Fatalf("kept an expired segment")
				}
			}
			if _, err := l.Read(l.LogStartOffset(), 100, l.EndOffset()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSliceSurvivesDeletion(t *testing.T) {
	cfg := smallConfig()
	cfg.RetentionMS = time.Millisecond
	l := mustOpen(t, t.TempDir(), cfg)
	defer l.Close()
	bs := fill(t, l, 40, nil)
	sl, err := l.Read(0, 1<<20, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := l.EnforceRetention(time.UnixMilli(1 << 50)); err != nil || n == 0 {
		t.Fatalf("retention %d %v", n, err)
	}
	b, err := sl.Bytes()
	sl.Release()
	if err != nil || !bytes.HasPrefix(bytes.Join(bs, nil), b) || len(b) == 0 {
		t.Fatalf("slice after deletion: %v", err)
	}
}

func TestEpochs(t *testing.T) {
	dir := t.TempDir()
	cfg := smallConfig()
	l := mustOpen(t, dir, cfg)
	if l.LatestEpoch() != -1 {
		t.Fatal("epoch on empty log")
	}
	// Epoch learned from batches: 0 at 0, 2 at 30, 5 at 60.
	fill(t, l, 30, func(i int) batchSpec {
		ep := int32(0)
		if i >= 10 {
			ep = 2
		}
		if i >= 20 {
			ep = 5
		}
		return batchSpec{base: int64(3 * i), n: 3, leaderEp: ep}
	})
	tests := []struct {
		req       int32
		wantEpoch int32
		wantOff   int64
	}{
		{5, 5, 90}, {2, 2, 60}, {3, 2, 60}, {4, 2, 60}, {0, 0, 30}, {1, 0, 30}, {6, -1, -1}, {-1, -1, -1},
	}
	check := func(l *Log) {
		t.Helper()
		for _, tc := range tests {
			e, o := l.EndOffsetForEpoch(tc.req)
			if e != tc.wantEpoch || o != tc.wantOff {
				t.Fatalf("epoch %d: got (%d,%d) want (%d,%d)", tc.req, e, o, tc.wantEpoch, tc.wantOff)
			}
		}
	}
	check(l)
	if err := l.AssignEpoch(7, 90); err != nil {
		t.Fatal(err)
	}
	if e, o := l.EndOffsetForEpoch(5); e != 5 || o != 90 {
		t.Fatalf("after assign: %d %d", e, o)
	}
	if err := l.TruncateTo(70); err != nil {
		t.Fatal(err)
	}
	if l.LatestEpoch() != 5 {
		t.Fatalf("latest after truncate %d", l.LatestEpoch())
	}
	if e, o := l.EndOffsetForEpoch(5); e != 5 || o != 70 {
		t.Fatalf("after truncate: %d %d", e, o)
	}
	if err := l.DeleteRecordsBefore(40); err != nil {
		t.Fatal(err)
	}
	if es := l.epochs.snapshot(); len(es) != 2 || es[0] != (epochEntry{2, 40}) {
		t.Fatalf("after delete records: %v", es)
	}
	l.Close()
	l = mustOpen(t, dir, cfg)
	defer l.Close()
	if es := l.epochs.snapshot(); len(es) != 2 || es[1] != (epochEntry{5, 60}) {
		t.Fatalf("after reopen: %v", es)
	}
	// The requested epoch below the earliest known one.
	if e, o := l.EndOffsetForEpoch(1); e != 1 || o != 40 {
		t.Fatalf("below earliest: %d %d", e, o)
	}
}

func TestProducerState(t *testing.T) {
	dir := t.TempDir()
	cfg := smallConfig()
	l := mustOpen(t, dir, cfg)
	// Producer 1: 8 batches of 3 records, epoch 0; producer 2 transactional, epoch 3, then a marker.
	off := int64(0)
	for i := 0; i < 8; i++ {
		mustAppend(t, l, buildTestBatch(batchSpec{base: off, n: 3, pid: 1, epoch: 0, seq: int32(3 * i), ts: off}))
		off += 3
	}
	mustAppend(t, l, buildTestBatch(batchSpec{base: off, n: 2, pid: 2, epoch: 3, seq: 0, txn: true}))
	txnStart := off
	off += 2
	check := func(l *Log, txnOpen bool) {
		t.Helper()
		e, ok := l.Producer(1)
		if !ok || len(e.Batches) != 5 || e.Batches[4].FirstSeq != 21 || e.Batches[4].LastSeq != 23 ||
			e.Batches[0].FirstOffset != 9 || e.Batches[4].LastOffset != 23 {
			t.Fatalf("producer 1: %+v", e)
		}
		e2, ok := l.Producer(2)
		if !ok || e2.Epoch != 3 {
			t.Fatalf("producer 2: %+v", e2)
		}
		if txnOpen && e2.CurrentTxnFirstOffset != txnStart || !txnOpen && e2.CurrentTxnFirstOffset != -1 {
			t.Fatalf("txn: %+v", e2)
		}
		if _, ok := l.Producer(3); ok {
			t.Fatal("unknown producer found")
		}
		if len(l.Producers()) != 2 {
			t.Fatal("producers")
		}
	}
	check(l, true)
	l.Close()
	l = mustOpen(t, dir, cfg)
	check(l, true)
	crash(l)
	l = mustOpen(t, dir, cfg)
	check(l, true)
	mustAppend(t, l, buildTestBatch(batchSpec{base: off, n: 1, pid: 2, epoch: 3, control: true, txn: true}))
	off++
	check(l, false)
	if err := l.TruncateTo(off - 1); err != nil {
		t.Fatal(err)
	}
	check(l, true)
	// Truncating into producer 1's batches drops them from the state.
	if err := l.TruncateTo(12); err != nil {
		t.Fatal(err)
	}
	e, _ := l.Producer(1)
	if len(e.Batches) != 4 || e.Batches[3].LastOffset != 11 {
		t.Fatalf("after truncate: %+v", e)
	}
	if _, ok := l.Producer(2); ok {
		t.Fatal("producer 2 survived truncation")
	}
	// Epoch bump resets the sequence window.
	mustAppend(t, l, buildTestBatch(batchSpec{base: 12, n: 1, pid: 1, epoch: 1, seq: 0}))
	if e, _ := l.Producer(1); e.Epoch != 1 || len(e.Batches) != 1 {
		t.Fatalf("epoch bump: %+v", e)
	}
	l.Close()
}

func TestLastSeqWraps(t *testing.T) {
	if got := lastSeq(1<<31-2, 3); got != 1 {
		t.Fatalf("wrap: %d", got)
	}
	if got := lastSeq(5, 3); got != 8 {
		t.Fatalf("plain: %d", got)
	}
}

// TestDeleteRecordsCrashBeforeRemoval simulates a crash after the new log start was checkpointed but
// before the segments below it were removed: Open removes them.
func TestDeleteRecordsCrashBeforeRemoval(t *testing.T) {
	dir := t.TempDir()
	cfg := smallConfig()
	l := mustOpen(t, dir, cfg)
	fill(t, l, 40, nil)
	segs := l.NumSegments()
	l.logStart.Store(70)
	if err := l.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	crash(l)
	l = mustOpen(t, dir, cfg)
	defer l.Close()
	if l.LogStartOffset() != 70 || l.NumSegments() >= segs || (*l.segs.Load())[0].base > 70 {
		t.Fatalf("log start %d, segments %d (was %d)", l.LogStartOffset(), l.NumSegments(), segs)
	}
	if _, err := l.Read(70, 100, l.EndOffset()); err != nil {
		t.Fatal(err)
	}
}

func TestProducerExpiration(t *testing.T) {
	cfg := smallConfig()
	cfg.ProducerIDExpiration = time.Hour
	hour := int64(time.Hour / time.Millisecond)
	l := mustOpen(t, t.TempDir(), cfg)
	defer l.Close()
	mustAppend(t, l, buildTestBatch(batchSpec{base: 0, n: 1, pid: 1, epoch: 0, seq: 0, ts: 0}))
	mustAppend(t, l, buildTestBatch(batchSpec{base: 1, n: 1, pid: 2, epoch: 0, seq: 0, ts: 0, txn: true}))
	mustAppend(t, l, buildTestBatch(batchSpec{base: 2, n: 1, pid: 3, epoch: 0, seq: 0, ts: 5 * hour}))
	if _, err := l.EnforceRetention(time.UnixMilli(5*hour + 1)); err != nil {
		t.Fatal(err)
	}
	ids := []int64{}
	for _, p := range l.Producers() {
		ids = append(ids, p.ProducerID)
	}
	// 1 expired; 2 has an open transaction; 3 is recent.
	if len(ids) != 2 || ids[0] != 2 || ids[1] != 3 {
		t.Fatalf("producers after expiry: %v", ids)
	}
}

func TestTruncateBelowLogStart(t *testing.T) {
	dir := t.TempDir()
	cfg := smallConfig()
	l := mustOpen(t, dir, cfg)
	fill(t, l, 30, func(i int) batchSpec {
		return batchSpec{base: int64(3 * i), n: 3, pid: 4, epoch: 0, seq: int32(3 * i), leaderEp: int32(i / 10)}
	})
	if err := l.DeleteRecordsBefore(60); err != nil {
		t.Fatal(err)
	}
	if err := l.TruncateTo(30); err != nil {
		t.Fatal(err)
	}
	check := func(l *Log) {
		t.Helper()
		if l.LogStartOffset() != 30 || l.EndOffset() != 30 || l.NumSegments() != 1 || l.LatestEpoch() != -1 {
			t.Fatalf("start %d end %d segments %d epoch %d", l.LogStartOffset(), l.EndOffset(), l.NumSegments(), l.LatestEpoch())
		}
		if _, ok := l.Producer(4); ok {
			t.Fatal("producer state survived a full truncation")
		}
	}
	check(l)
	mustAppend(t, l, buildTestBatch(batchSpec{base: 30, n: 2, leaderEp: 9}))
	if l.LatestEpoch() != 9 {
		t.Fatalf("epoch %d", l.LatestEpoch())
	}
	if err := l.TruncateTo(30); err != nil {
		t.Fatal(err)
	}
	check(l)
	crash(l)
	l = mustOpen(t, dir, cfg)
	defer l.Close()
	check(l)
}

// TestTruncateFullyAndStartAt covers a follower that starts over at its leader's log start, above its
// own log end and below it, and that the new start survives a crash.
func TestTruncateFullyAndStartAt(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start int64
	}{
		{"above the log end", 500},
		{"inside the log", 40},
		{"at zero", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := smallConfig()
			l := mustOpen(t, dir, cfg)
			fill(t, l, 30, func(i int) batchSpec {
				return batchSpec{base: int64(3 * i), n: 3, pid: 4, epoch: 0, seq: int32(3 * i), leaderEp: int32(i / 10)}
			})
			if err := l.TruncateFullyAndStartAt(tc.start); err != nil {
				t.Fatal(err)
			}
			check := func(l *Log) {
				t.Helper()
				if l.LogStartOffset() != tc.start || l.EndOffset() != tc.start || l.HighWatermark() != tc.start ||
					l.NumSegments() != 1 || l.LatestEpoch() != -1 {
					t.Fatalf("start %d end %d hw %d segments %d epoch %d", l.LogStartOffset(), l.EndOffset(),
						l.HighWatermark(), l.NumSegments(), l.LatestEpoch())
				}
				if _, ok := l.Producer(4); ok {
					t.Fatal("producer state survived a full truncation")
				}
			}
			check(l)
			crash(l)
			l = mustOpen(t, dir, cfg)
			check(l)
			mustAppend(t, l, buildTestBatch(batchSpec{base: tc.start, n: 2, leaderEp: 7}))
			if l.EndOffset() != tc.start+2 || l.LatestEpoch() != 7 {
				t.Fatalf("after append: end %d epoch %d", l.EndOffset(), l.LatestEpoch())
			}
			if got := readAll(t, l, tc.start); len(got) == 0 {
				t.Fatal("appended batch not readable")
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if err := l.TruncateFullyAndStartAt(1); !errors.Is(err, ErrClosed) {
				t.Fatalf("closed log: %v", err)
			}
		})
	}
}

// TestTruncateAtEndDropsEmptyEpoch: a replica that led an epoch without appending has an epoch entry
// at its log end; truncating to the end keeps the records and drops that entry (Kafka's
// truncateTo), durably.
func TestTruncateAtEndDropsEmptyEpoch(t *testing.T) {
	dir := t.TempDir()
	cfg := smallConfig()
	l := mustOpen(t, dir, cfg)
	if err := l.AssignEpoch(0, 0); err != nil {
		t.Fatal(err)
	}
	bs := fill(t, l, 7, nil)
	if err := l.AssignEpoch(1, l.EndOffset()); err != nil {
		t.Fatal(err)
	}
	if got := l.LatestEpoch(); got != 1 {
		t.Fatalf("latest epoch %d, want 1", got)
	}
	if err := l.TruncateTo(l.EndOffset()); err != nil {
		t.Fatal(err)
	}
	check := func(l *Log) {
		t.Helper()
		if got := l.LatestEpoch(); got != 0 {
			t.Fatalf("latest epoch %d after truncating to the end, want 0", got)
		}
		if got := readAll(t, l, 0); !bytes.Equal(got, bytes.Join(bs, nil)) {
			t.Fatal("records changed")
		}
		if e, end := l.EndOffsetForEpoch(0); e != 0 || end != 21 {
			t.Fatalf("end of epoch 0: epoch %d offset %d, want 0 21", e, end)
		}
	}
	check(l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, dir, cfg)
	check(l)
	l.Close()
}

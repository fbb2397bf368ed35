package storage

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestAbortedTransactions(t *testing.T) {
	dir := t.TempDir()
	cfg := smallConfig()
	cfg.SegmentBytes = 600 // transactions span segments
	l := mustOpen(t, dir, cfg)
	txn := func(base int64, n int, pid int64) {
		mustAppend(t, l, buildTestBatch(batchSpec{base: base, n: n, pid: pid, epoch: 0, seq: int32(base), txn: true, valSize: 150}))
	}
	marker := func(base int64, pid int64, abort bool) {
		mustAppend(t, l, buildTestBatch(batchSpec{base: base, n: 1, pid: pid, epoch: 0, control: true, txn: true, abort: abort}))
	}
	txn(0, 3, 1) // pid 1: 0..2
	txn(3, 2, 2) // pid 2: 3..4
	txn(5, 2, 1) // pid 1: 5..6
	if off, ok := l.FirstUnstableOffset(); !ok || off != 0 {
		t.Fatalf("first unstable %d %v", off, ok)
	}
	marker(7, 1, true) // abort pid 1 [0, 7]; pid 2 still open -> LSO 3
	if off, ok := l.FirstUnstableOffset(); !ok || off != 3 {
		t.Fatalf("first unstable after abort %d %v", off, ok)
	}
	marker(8, 2, false) // commit pid 2
	txn(9, 2, 1)        // pid 1: 9..10
	marker(11, 1, true) // abort [9, 11], LSO 12
	if _, ok := l.FirstUnstableOffset(); ok {
		t.Fatal("open transaction after all markers")
	}
	if l.NumSegments() < 3 {
		t.Fatalf("want transactions across segments, have %d segments", l.NumSegments())
	}
	first := AbortedTxn{ProducerID: 1, FirstOffset: 0, LastOffset: 7, LastStableOffset: 3}
	second := AbortedTxn{ProducerID: 1, FirstOffset: 9, LastOffset: 11, LastStableOffset: 12}
	tests := []struct {
		from, upTo int64
		want       []AbortedTxn
	}{
		{0, 12, []AbortedTxn{first, second}},
		{0, 5, []AbortedTxn{first}},
		{8, 12, []AbortedTxn{second}},
		{7, 9, []AbortedTxn{first}},
		{12, 12, nil},
	}
	check := func(l *Log, what string) {
		t.Helper()
		for _, tc := range tests {
			got, err := l.AbortedTransactions(tc.from, tc.upTo)
			if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("%s: [%d,%d): got %v want %v (%v)", what, tc.from, tc.upTo, got, tc.want, err)
			}
		}
	}
	check(l, "live")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, dir, cfg)
	check(l, "clean reopen")
	crash(l)
	// Lose every transaction index and the recovery point: recovery must rebuild them from the log.
	m, _ := filepath.Glob(filepath.Join(dir, "*"+txnIndexSuffix))
	if len(m) == 0 {
		t.Fatal("no transaction index files written")
	}
	for _, f := range append(m, filepath.Join(dir, checkpointFile)) {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	l = mustOpen(t, dir, cfg)
	check(l, "rebuilt")
	if err := l.TruncateTo(11); err != nil { // drops the second ABORT marker only
		t.Fatal(err)
	}
	got, _ := l.AbortedTransactions(0, 20)
	if fmt.Sprint(got) != fmt.Sprint([]AbortedTxn{first}) {
		t.Fatalf("after truncate: %v", got)
	}
	if off, ok := l.FirstUnstableOffset(); !ok || off != 9 {
		t.Fatalf("first unstable after truncate %d %v", off, ok)
	}
	l.Close()
}

func TestAppendRejectsBadControlBatch(t *testing.T) {
	l := mustOpen(t, t.TempDir(), DefaultConfig())
	defer l.Close()
	b := BuildBatch(BatchHeader{Attributes: attrControl | attrTransactional, ProducerID: 1, BaseSequence: -1},
		[]Record{{Key: []byte{0}, Value: nil}})
	if _, err := l.Append(b); err == nil {
		t.Fatal("control batch without a marker key accepted")
	}
}

func FuzzDecodeTxnIndex(f *testing.F) {
	f.Add(encodeTxnEntries([]AbortedTxn{{1, 0, 7, 3}, {2, 9, 11, 12}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := decodeTxnIndex(b)
		if err != nil {
			return
		}
		if string(encodeTxnEntries(es)) != string(b) {
			t.Fatal("transaction index does not round-trip")
		}
	})
}

// TestAbortVisibleWithItsIndexEntry checks the read_committed invariant under a concurrent writer: once
// the last stable offset has moved past an aborted transaction's records, AbortedTransactions must
// already list that transaction, or a fetch in between hands the aborted records to a read_committed
// consumer (franz-go's TestTxnEtl caught this: the ABORT marker's producer state was published before
// its .txnindex entry). One producer writes transactions of one record each, all aborted, so with an
// end offset used as the high watermark the last stable offset is always 2k with k readable aborted
// records below it, each of which needs its entry. The writer moves the high watermark after each Append
// returns, as the broker does, and the reader bounds the last stable offset by it.
func TestAbortVisibleWithItsIndexEntry(t *testing.T) {
	l := mustOpen(t, t.TempDir(), DefaultConfig())
	defer l.Close()
	const txns = 3000
	done := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		defer close(errc)
		for {
			select {
			case <-done:
				return
			default:
			}
			lso := l.HighWatermark()
			if first, ok := l.FirstUnstableOffset(); ok && first < lso {
				lso = first
			}
			ab, err := l.AbortedTransactions(0, lso)
			if err != nil {
				errc <- err
				return
			}
			if want := (lso + 1) / 2; int64(len(ab)) < want {
				errc <- fmt.Errorf("last stable offset %d exposes %d aborted records but only %d aborted transactions are listed", lso, want, len(ab))
				return
			}
		}
	}()
	for k := range int64(txns) {
		mustAppend(t, l, buildTestBatch(batchSpec{base: 2 * k, n: 1, pid: 1, epoch: 0, seq: int32(k), txn: true}))
		l.SetHighWatermark(2*k + 1)
		mustAppend(t, l, buildTestBatch(batchSpec{base: 2*k + 1, n: 1, pid: 1, epoch: 0, control: true, txn: true, abort: true}))
		l.SetHighWatermark(2*k + 2)
	}
	close(done)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if ab, _ := l.AbortedTransactions(0, l.EndOffset()); len(ab) != txns {
		t.Fatalf("%d aborted transactions listed, want %d", len(ab), txns)
	}
}

// A producer's coordinator epoch is the one in its last marker, and it is the
// same after a clean reopen (snapshot), a reopen without snapshots (log
// replay), a crash (recovery) and a truncation below the newest marker.
func TestCoordinatorEpochPersists(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, smallConfig())
	mustAppend(t, l, buildTestBatch(batchSpec{base: 0, n: 2, pid: 7, epoch: 0, seq: 0, txn: true}))
	want := func(l *Log, what string, epoch int32) {
		t.Helper()
		e, ok := l.Producer(7)
		if !ok || e.CoordinatorEpoch != epoch {
			t.Fatalf("%s: producer 7 %+v (found %v), want coordinator epoch %d", what, e, ok, epoch)
		}
	}
	want(l, "before any marker", -1)
	mustAppend(t, l, buildTestBatch(batchSpec{base: 2, pid: 7, epoch: 0, control: true, txn: true, coordEp: 4}))
	want(l, "after the marker", 4)
	mustAppend(t, l, buildTestBatch(batchSpec{base: 3, n: 2, pid: 7, epoch: 0, seq: 2, txn: true}))
	mustAppend(t, l, buildTestBatch(batchSpec{base: 5, pid: 7, epoch: 0, control: true, txn: true, abort: true, coordEp: 9}))
	want(l, "after the second marker", 9)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l = mustOpen(t, dir, smallConfig())
	want(l, "clean reopen", 9)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	snaps, _ := filepath.Glob(filepath.Join(dir, "*"+snapshotSuffix))
	if len(snaps) == 0 {
		t.Fatal("clean shutdown wrote no producer snapshot")
	}
	for _, s := range snaps {
		if err := os.Remove(s); err != nil {
			t.Fatal(err)
		}
	}
	l = mustOpen(t, dir, smallConfig())
	want(l, "reopen replaying the log", 9)
	crash(l)

	l = mustOpen(t, dir, smallConfig())
	want(l, "reopen after a crash", 9)
	if err := l.TruncateTo(5); err != nil {
		t.Fatal(err)
	}
	want(l, "truncated below the second marker", 4)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// A version-1 snapshot, written before coordinator epochs were kept, still
// loads: its producers have coordinator epoch -1.
func TestSnapshotVersion1(t *testing.T) {
	e := ProducerEntry{ProducerID: 3, Epoch: 1, LastTimestamp: 10, CurrentTxnFirstOffset: -1, CoordinatorEpoch: 6,
		Batches: []ProducerBatch{{FirstSeq: 0, LastSeq: 1, FirstOffset: 0, LastOffset: 1, Timestamp: 10}}}
	v2 := encodeSnapshot(2, []ProducerEntry{e})
	// Version 1 is version 2 without the 4 coordinator-epoch bytes after txnFirst (entry offset 26).
	v1 := append(append([]byte{}, v2[:22+26]...), v2[22+30:]...)
	binary.BigEndian.PutUint16(v1[4:], 1)
	binary.BigEndian.PutUint32(v1[6:], crc32.Checksum(v1[10:], castagnoli))
	off, es, err := decodeSnapshot(v1)
	if err != nil || off != 2 || len(es) != 1 {
		t.Fatalf("decode v1: %d %+v %v", off, es, err)
	}
	e.CoordinatorEpoch = -1
	if !reflect.DeepEqual(es[0], e) {
		t.Fatalf("v1 entry %+v, want %+v", es[0], e)
	}
}

package storage

import (
	"fmt"
	"os"
	"path/filepath"
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

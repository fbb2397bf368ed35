package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// The seed corpora live in testdata/fuzz/<FuzzName>/ so plain `go test` runs them.

func FuzzParseBatchHeader(f *testing.F) {
	f.Add(buildTestBatch(batchSpec{base: 1, n: 2}))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseBatchHeader(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidBatch) {
				t.Fatalf("error %v does not wrap ErrInvalidBatch", err)
			}
			return
		}
		if h.Magic != 2 || h.Size() < BatchHeaderSize || h.LastOffset() < h.BaseOffset {
			t.Fatalf("accepted impossible header %+v", h)
		}
		// Re-encoding the header gives the same bytes.
		enc := make([]byte, BatchHeaderSize)
		putHeader(enc, h)
		if !bytes.Equal(enc, b[:BatchHeaderSize]) {
			t.Fatal("header does not round-trip")
		}
		_ = VerifyCRC(b)
	})
}

func FuzzSplitBatches(f *testing.F) {
	a := buildTestBatch(batchSpec{base: 0, n: 2})
	f.Add(append(bytes.Clone(a), buildTestBatch(batchSpec{base: 2, n: 1})...))
	f.Fuzz(func(t *testing.T, b []byte) {
		total := 0
		err := SplitBatches(b, func(h BatchHeader, batch []byte) bool {
			if len(batch) != h.Size() {
				t.Fatalf("batch len %d, header size %d", len(batch), h.Size())
			}
			total += len(batch)
			return true
		})
		if err == nil && total != len(b) {
			t.Fatalf("no error but only %d of %d bytes consumed", total, len(b))
		}
		if err != nil && !errors.Is(err, ErrInvalidBatch) {
			t.Fatalf("unexpected error kind: %v", err)
		}
	})
}

func FuzzDecodeOffsetIndex(f *testing.F) {
	f.Add(encodeOffsetEntries([]offsetEntry{{1, 100}, {5, 4200}}), int64(10000))
	f.Fuzz(func(t *testing.T, b []byte, size int64) {
		es, err := decodeOffsetIndex(b, size)
		if err != nil {
			return
		}
		if !bytes.Equal(encodeOffsetEntries(es), b) {
			t.Fatal("offset index does not round-trip")
		}
		for i := 1; i < len(es); i++ {
			if es[i].rel <= es[i-1].rel || es[i].pos <= es[i-1].pos || int64(es[i].pos) >= size {
				t.Fatal("accepted a non-monotonic or out-of-bounds index")
			}
		}
	})
}

func FuzzDecodeTimeIndex(f *testing.F) {
	f.Add(encodeTimeEntries([]timeEntry{{1000, 1}, {2000, 9}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := decodeTimeIndex(b)
		if err != nil {
			return
		}
		if !bytes.Equal(encodeTimeEntries(es), b) {
			t.Fatal("time index does not round-trip")
		}
	})
}

func FuzzDecodeSnapshot(f *testing.F) {
	f.Add(encodeSnapshot(42, []ProducerEntry{{ProducerID: 1, Epoch: 2, CurrentTxnFirstOffset: -1, CoordinatorEpoch: 7,
		Batches: []ProducerBatch{{FirstSeq: 0, LastSeq: 4, FirstOffset: 10, LastOffset: 14, Timestamp: 5}}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		off, es, err := decodeSnapshot(b)
		if err != nil {
			return
		}
		again := encodeSnapshot(off, es)
		if binary.BigEndian.Uint16(b[4:]) == snapshotVersion {
			if !bytes.Equal(again, b) {
				t.Fatal("snapshot does not round-trip")
			}
			return
		}
		// An older version is rewritten in the current one without losing anything.
		off2, es2, err := decodeSnapshot(again)
		if err != nil || off2 != off || !reflect.DeepEqual(es2, es) {
			t.Fatalf("old snapshot rewritten as %d %+v (%v), decoded %d %+v", off2, es2, err, off, es)
		}
	})
}

func FuzzDecodeCheckpoints(f *testing.F) {
	f.Add(encodeCheckpoint(checkpoint{logStart: 1, highWatermark: 5, recoveryPoint: 4}))
	f.Add(encodeEpochs([]epochEntry{{0, 0}, {3, 17}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := decodeCheckpoint(b); err == nil {
			if c2, err := decodeCheckpoint(encodeCheckpoint(c)); err != nil || c2 != c {
				t.Fatal("checkpoint does not round-trip")
			}
		}
		if es, err := decodeEpochs(b); err == nil {
			es2, err := decodeEpochs(encodeEpochs(es))
			if err != nil || len(es2) != len(es) {
				t.Fatal("epochs do not round-trip")
			}
		}
	})
}

func FuzzDecodeRecords(f *testing.F) {
	b := buildTestBatch(batchSpec{base: 0, n: 3})
	f.Add(b[BatchHeaderSize:], 3)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		recs, err := decodeRecords(b, n)
		if err != nil {
			return
		}
		var enc []byte
		for _, r := range recs {
			enc = appendRecord(enc, r)
		}
		again, err := decodeRecords(enc, len(recs))
		if err != nil || len(again) != len(recs) {
			t.Fatalf("records do not re-decode: %v", err)
		}
	})
}

// FuzzRecovery opens a log whose only segment holds arbitrary bytes: Open must not fail or panic, and
// every batch it then serves must be intact.
func FuzzRecovery(f *testing.F) {
	good := append(buildTestBatch(batchSpec{base: 0, n: 2}), buildTestBatch(batchSpec{base: 2, n: 3})...)
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Fuzz(func(t *testing.T, seg []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segmentName(0)+logSuffix), seg, 0o644); err != nil {
			t.Fatal(err)
		}
		l, err := Open(dir, smallConfig())
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		defer l.Close()
		raw := readAll(t, l, l.LogStartOffset())
		if err := SplitBatches(raw, func(h BatchHeader, b []byte) bool {
			if err := VerifyCRC(b); err != nil {
				t.Fatalf("served a corrupt batch: %v", err)
			}
			return true
		}); err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(seg, raw) {
			t.Fatal("recovered bytes are not a prefix of the segment")
		}
		if _, err := l.Append(buildTestBatch(batchSpec{base: l.EndOffset(), n: 1})); err != nil {
			t.Fatalf("append after recovery: %v", err)
		}
	})
}

// FuzzVarint holds Varint to binary.Varint on any input.
func FuzzVarint(f *testing.F) {
	for _, seed := range [][]byte{nil, {0}, {1}, {0x7f}, {0x80}, {0x80, 0}, {0xc8, 1}, {0xff, 0x7f}, {0xff, 0xff, 1},
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2}} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, gotN := Varint(b)
		want, wantN := binary.Varint(b)
		if got != want || gotN != wantN {
			t.Fatalf("Varint(%x) = %d, %d; binary.Varint says %d, %d", b, got, gotN, want, wantN)
		}
	})
}

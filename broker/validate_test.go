package broker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/stromhq/strom/storage"
)

// mkBatch builds a valid uncompressed batch of n records with timestamps ts.
func mkBatch(n int, ts int64, mod func(*storage.BatchHeader, []storage.Record)) []byte {
	recs := make([]storage.Record, n)
	for i := range recs {
		recs[i] = storage.Record{OffsetDelta: int32(i), TimestampDelta: int64(i), Key: []byte{'k', byte(i)}, Value: []byte("value")}
	}
	h := storage.BatchHeader{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, BaseTimestamp: ts, MaxTimestamp: ts + int64(n-1), LastOffsetDelta: int32(n - 1), PartitionLeaderEpoch: -1}
	if mod != nil {
		mod(&h, recs)
	}
	return storage.BuildBatch(h, recs)
}

func TestValidateBatch(t *testing.T) {
	now := time.Now().UnixMilli()
	def := testPartConfig(nil)
	small := testPartConfig(map[string]string{"max.message.bytes": "100"})
	compact := testPartConfig(map[string]string{"cleanup.policy": "compact"})
	strict := testPartConfig(map[string]string{"message.timestamp.before.max.ms": "60000", "message.timestamp.after.max.ms": "60000"})
	flip := func(b []byte, i int) []byte { b = bytes.Clone(b); b[i] ^= 1; return b }
	tests := []struct {
		name    string
		batch   []byte
		version int16
		pc      *partConfig
		want    *kerr.Error
	}{
		{"valid", mkBatch(3, now, nil), 9, def, nil},
		{"two batches", append(mkBatch(1, now, nil), mkBatch(1, now, nil)...), 9, def, kerr.InvalidRecord},
		{"truncated", mkBatch(2, now, nil)[:70], 9, def, kerr.CorruptMessage},
		{"bad crc", flip(mkBatch(2, now, nil), 70), 9, def, kerr.CorruptMessage},
		{"base offset not 0", func() []byte { b := mkBatch(1, now, nil); storage.SetBaseOffset(b, 5); return b }(), 9, def, kerr.InvalidRecord},
		{"too large", mkBatch(10, now, nil), 9, small, kerr.MessageTooLarge},
		{"count mismatch", mkBatch(2, now, func(h *storage.BatchHeader, _ []storage.Record) { h.LastOffsetDelta = 5 }), 9, def, kerr.InvalidRecord},
		{"control batch", mkBatch(1, now, func(h *storage.BatchHeader, _ []storage.Record) { h.Attributes |= 1 << 5 }), 9, def, kerr.InvalidRecord},
		{"negative sequence", mkBatch(1, now, func(h *storage.BatchHeader, _ []storage.Record) { h.ProducerID, h.ProducerEpoch = 5, 0 }), 9, def, kerr.InvalidRecord},
		// Valid here; the transaction is verified under the partition lock.
		{"transactional", mkBatch(1, now, func(h *storage.BatchHeader, _ []storage.Record) {
			h.Attributes |= 1 << 4
			h.ProducerID, h.ProducerEpoch, h.BaseSequence = 5, 0, 0
		}), 9, def, nil},
		{"transactional without producer", mkBatch(1, now, func(h *storage.BatchHeader, _ []storage.Record) {
			h.Attributes |= 1 << 4
		}), 9, def, kerr.InvalidRecord},
		{"compacted without key", mkBatch(2, now, func(_ *storage.BatchHeader, r []storage.Record) { r[1].Key = nil }), 9, compact, kerr.InvalidRecord},
		{"compacted with keys", mkBatch(2, now, nil), 9, compact, nil},
		{"timestamp too old", mkBatch(1, now-3600_000, nil), 9, strict, kerr.InvalidTimestamp},
		{"timestamp too new", mkBatch(1, now+3600_000, nil), 9, strict, kerr.InvalidTimestamp},
		{"default future limit is one hour", mkBatch(1, now+2*3600_000, nil), 9, def, kerr.InvalidTimestamp},
		{"producer LogAppendTime", mkBatch(1, now, func(h *storage.BatchHeader, _ []storage.Record) { h.Attributes |= 1 << 3 }), 9, def, kerr.InvalidTimestamp},
		{"unknown codec", mkBatch(1, now, func(h *storage.BatchHeader, _ []storage.Record) { h.Attributes |= 6 }), 9, def, kerr.CorruptMessage},
		{"zstd before v7", mkBatch(1, now, func(h *storage.BatchHeader, _ []storage.Record) { h.Attributes |= 4 }), 6, def, kerr.UnsupportedCompressionType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chk, e, msg := validateBatch(tt.batch, tt.version, tt.pc, now)
			if !errors.Is(errOrNil(e), errOrNil(tt.want)) || (e == nil) != (tt.want == nil) {
				t.Fatalf("got %v (%s), want %v", e, msg, tt.want)
			}
			if e == nil {
				if err := storage.VerifyCRC(chk.batch); err != nil {
					t.Fatalf("accepted batch has a bad CRC: %v", err)
				}
			}
		})
	}
}

func errOrNil(e *kerr.Error) error {
	if e == nil {
		return nil
	}
	return e
}

func TestValidateBatchRewrites(t *testing.T) {
	now := time.Now().UnixMilli()
	// LogAppendTime: timestamp type bit and max timestamp set, CRC redone.
	lat := testPartConfig(map[string]string{"message.timestamp.type": "LogAppendTime"})
	in := mkBatch(2, now-5000, nil)
	chk, e, _ := validateBatch(in, 9, lat, now)
	if e != nil {
		t.Fatal(e)
	}
	if chk.hdr.TimestampType() != 1 || chk.hdr.MaxTimestamp != now || chk.maxTimestamp != now {
		t.Fatalf("log append time not stamped: %+v", chk.hdr)
	}
	if err := storage.VerifyCRC(chk.batch); err != nil {
		t.Fatalf("CRC after LogAppendTime: %v", err)
	}
	// A wrong max timestamp from the producer is corrected.
	in = mkBatch(3, now, func(h *storage.BatchHeader, _ []storage.Record) { h.MaxTimestamp = now - 100 })
	chk, e, _ = validateBatch(in, 9, testPartConfig(nil), now)
	if e != nil || chk.hdr.MaxTimestamp != now+2 {
		t.Fatalf("max timestamp %d (%v), want %d", chk.hdr.MaxTimestamp, e, now+2)
	}
	// compression.type=zstd recompresses; records survive.
	for _, target := range []string{"gzip", "snappy", "lz4", "zstd", "uncompressed"} {
		pc := testPartConfig(map[string]string{"compression.type": target})
		in = mkBatch(5, now, nil)
		chk, e, _ = validateBatch(in, 9, pc, now)
		if e != nil {
			t.Fatalf("%s: %v", target, e)
		}
		want, _ := codecByName(target)
		if chk.hdr.Compression() != want {
			t.Fatalf("%s: codec %d", target, chk.hdr.Compression())
		}
		raw, err := storage.Decompress(chk.hdr.Compression(), chk.batch[batchHeaderSize:])
		if err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		n, err := parseRecords(raw, func(i int, r recordView) error {
			if r.offsetDelta != int32(i) || string(r.value) != "value" || r.key[1] != byte(i) {
				t.Fatalf("%s: record %d = %+v", target, i, r)
			}
			return nil
		})
		if err != nil || n != 5 {
			t.Fatalf("%s: %d records, %v", target, n, err)
		}
		if err := storage.VerifyCRC(chk.batch); err != nil {
			t.Fatalf("%s: CRC: %v", target, err)
		}
		if got := int32(binary.BigEndian.Uint32(chk.batch[recordsCountPos:])); got != 5 {
			t.Fatalf("%s: count %d", target, got)
		}
	}
}

func TestCheckSequence(t *testing.T) {
	entry := storage.ProducerEntry{ProducerID: 7, Epoch: 2, Batches: []storage.ProducerBatch{
		{FirstSeq: 0, LastSeq: 4, FirstOffset: 10, LastOffset: 14},
		{FirstSeq: 5, LastSeq: 9, FirstOffset: 20, LastOffset: 24},
	}}
	hdr := func(epoch int16, seq, delta int32) storage.BatchHeader {
		return storage.BatchHeader{ProducerID: 7, ProducerEpoch: epoch, BaseSequence: seq, LastOffsetDelta: delta}
	}
	tests := []struct {
		name    string
		entry   storage.ProducerEntry
		exists  bool
		h       storage.BatchHeader
		want    *kerr.Error
		dupOffs int64
	}{
		{"new producer any sequence", storage.ProducerEntry{}, false, hdr(0, 42, 0), nil, -1},
		{"next in sequence", entry, true, hdr(2, 10, 3), nil, -1},
		{"duplicate of last", entry, true, hdr(2, 5, 4), nil, 20},
		{"duplicate of older", entry, true, hdr(2, 0, 4), nil, 10},
		{"gap", entry, true, hdr(2, 12, 0), kerr.OutOfOrderSequenceNumber, -1},
		{"overlap not exact", entry, true, hdr(2, 6, 1), kerr.OutOfOrderSequenceNumber, -1},
		{"old epoch", entry, true, hdr(1, 10, 0), kerr.InvalidProducerEpoch, -1},
		{"new epoch from 0", entry, true, hdr(3, 0, 0), nil, -1},
		{"new epoch not from 0", entry, true, hdr(3, 10, 0), kerr.OutOfOrderSequenceNumber, -1},
		{"wrap after max int32", storage.ProducerEntry{Epoch: 0, Batches: []storage.ProducerBatch{{FirstSeq: 1<<31 - 2, LastSeq: 1<<31 - 1}}}, true, hdr(0, 0, 0), nil, -1},
		{"same epoch empty batches needs 0", storage.ProducerEntry{Epoch: 0}, true, hdr(0, 3, 0), kerr.OutOfOrderSequenceNumber, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dup, e, _ := checkSequence(tt.entry, tt.exists, tt.h)
			if (e == nil) != (tt.want == nil) || (e != nil && e != tt.want) {
				t.Fatalf("error %v, want %v", e, tt.want)
			}
			if tt.dupOffs >= 0 && (dup == nil || dup.FirstOffset != tt.dupOffs) {
				t.Fatalf("duplicate %+v, want first offset %d", dup, tt.dupOffs)
			}
			if tt.dupOffs < 0 && dup != nil {
				t.Fatalf("unexpected duplicate %+v", dup)
			}
		})
	}
	if got := lastSequence(1<<31-2, 3); got != 1 {
		t.Fatalf("lastSequence wrap = %d, want 1", got)
	}
}

func TestValidateBatchRenumbersInnerOffsets(t *testing.T) {
	now := time.Now().UnixMilli()
	in := mkBatch(3, now, func(_ *storage.BatchHeader, r []storage.Record) { r[1].OffsetDelta, r[2].OffsetDelta = 7, 9 })
	chk, e, _ := validateBatch(in, 9, testPartConfig(nil), now)
	if e != nil {
		t.Fatal(e)
	}
	var deltas []int32
	if _, err := parseRecords(chk.batch[batchHeaderSize:], func(_ int, r recordView) error { deltas = append(deltas, r.offsetDelta); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(deltas) != 3 || deltas[1] != 1 || deltas[2] != 2 {
		t.Fatalf("inner offsets %v, want [0 1 2]", deltas)
	}
	if err := storage.VerifyCRC(chk.batch); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkValidateBatch walks a 1 MB batch of 100-byte records, as a
// producer with linger fills it: the per-record cost of produce validation.
func BenchmarkValidateBatch(b *testing.B) {
	now := time.Now().UnixMilli()
	recs := make([]storage.Record, 9000)
	value := bytes.Repeat([]byte{'v'}, 100)
	for i := range recs {
		recs[i] = storage.Record{OffsetDelta: int32(i), Value: value}
	}
	h := storage.BatchHeader{ProducerID: 7, ProducerEpoch: 0, BaseSequence: 0, BaseTimestamp: now, MaxTimestamp: now,
		LastOffsetDelta: int32(len(recs) - 1), PartitionLeaderEpoch: -1}
	batch := storage.BuildBatch(h, recs)
	pc := testPartConfig(nil)
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		if _, kerrv, msg := validateBatch(batch, 9, pc, now); kerrv != nil {
			b.Fatalf("validateBatch: %v %s", kerrv, msg)
		}
	}
}

// TestTakeVarintMatchesKbin checks the inline one- and two-byte decoding of
// takeVarint and takeVarlong against kbin for every two-byte prefix, with and
// without more bytes after it.
func TestTakeVarintMatchesKbin(t *testing.T) {
	for x := 0; x < 1<<16; x++ {
		for _, b := range [][]byte{{byte(x)}, {byte(x), byte(x >> 8)}, {byte(x), byte(x >> 8), 0x01}, {byte(x), byte(x >> 8), 0x81, 0x01}} {
			v, k := kbin.Varint(b)
			got, rest, ok := takeVarint(b)
			if ok != (k > 0) || ok && (got != int64(v) || len(rest) != len(b)-k) {
				t.Fatalf("takeVarint(% x) = %d, %d left, %v; kbin: %d, %d bytes", b, got, len(rest), ok, v, k)
			}
			vl, kl := kbin.Varlong(b)
			gotl, restl, okl := takeVarlong(b)
			if okl != (kl > 0) || okl && (gotl != vl || len(restl) != len(b)-kl) {
				t.Fatalf("takeVarlong(% x) = %d, %d left, %v; kbin: %d, %d bytes", b, gotl, len(restl), okl, vl, kl)
			}
		}
	}
}

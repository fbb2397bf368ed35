package bench

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strings"
	"testing"

	"github.com/stromhq/strom/storage"
)

// testBatch is an uncompressed batch at base with one record per value (nil values are null), keyed
// with key when it is not nil, and attrs in its header.
func testBatch(base int64, attrs int16, key []byte, values ...[]byte) []byte {
	recs := make([]storage.Record, len(values))
	for i, v := range values {
		recs[i] = storage.Record{OffsetDelta: int32(i), Key: key, Value: v}
	}
	return storage.BuildBatch(storage.BatchHeader{BaseOffset: base, Attributes: attrs,
		LastOffsetDelta: int32(len(values) - 1)}, recs)
}

func TestWalkBatches(t *testing.T) {
	v := func(n int) []byte { return bytes.Repeat([]byte{'v'}, n) }
	join := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	first := testBatch(10, 0, nil, v(100), v(100), v(100))  // offsets 10-12
	second := testBatch(13, 0, []byte("key"), v(50), nil)   // offsets 13-14: 3+50 bytes, then 3+0
	marker := testBatch(15, 0x20, []byte{0, 0, 0, 0}, v(6)) // a control batch at 15
	third := testBatch(16, 0, nil, v(7))
	badCRC := append([]byte(nil), first...)
	badCRC[len(badCRC)-1] ^= 0xff
	lz4 := testBatch(10, 3, nil, v(1))
	oldMagic := append([]byte(nil), first...)
	oldMagic[16] = 1
	shortRecord := testBatch(10, 0, nil, v(100))
	shortRecord = shortRecord[:len(shortRecord)-1] // the record's length says one byte more
	binary.BigEndian.PutUint32(shortRecord[batchLengthAt:], uint32(len(shortRecord)-12))
	fixCRC(shortRecord)
	tooMany := append([]byte(nil), first...)
	tooMany[recordCountAt+3] = 4 // claims a fourth record the batch does not hold
	fixCRC(tooMany)
	negDelta := append([]byte(nil), first...)
	binary.BigEndian.PutUint32(negDelta[lastOffsetDeltaAt:], 0xffffffff)
	fixCRC(negDelta)

	tests := []struct {
		name    string
		data    []byte
		from    int64
		want    walked
		wantErr string
	}{
		{name: "nothing", data: nil, from: 7, want: walked{next: 7}},
		{name: "one batch", data: first, from: 10, want: walked{records: 3, bytes: 300, next: 13}},
		{name: "keys and a null value", data: join(first, second), from: 10, want: walked{records: 5, bytes: 300 + 53 + 3, next: 15}},
		{name: "from inside a batch", data: join(first, second), from: 12, want: walked{records: 3, bytes: 100 + 56, next: 15}},
		{name: "a batch before from", data: join(first, second), from: 13, want: walked{records: 2, bytes: 56, next: 15}},
		{name: "control batch moves the offset only", data: join(marker, third), from: 15, want: walked{records: 1, bytes: 7, next: 17}},
		{name: "cut batch left for the next fetch", data: join(first, second[:len(second)-1]), from: 10, want: walked{records: 3, bytes: 300, next: 13}},
		{name: "cut header", data: join(first, second[:20]), from: 10, want: walked{records: 3, bytes: 300, next: 13}},
		{name: "bad CRC", data: badCRC, from: 10, wantErr: "CRC-32C"},
		{name: "compressed", data: lz4, from: 10, wantErr: "uncompressed batches only"},
		{name: "old magic", data: oldMagic, from: 10, wantErr: "magic 1"},
		{name: "records missing", data: shortRecord, from: 10, wantErr: "record 0 of 1: length"},
		{name: "negative offset delta", data: negDelta, from: 0, wantErr: "last offset delta -1"},
		{name: "count beyond the records", data: tooMany, from: 10, wantErr: "record 3 of 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := walkBatches(tt.data, tt.from)
			if tt.wantErr != "" {
				if !errors.Is(err, errBadBatch) || !bytes.Contains([]byte(err.Error()), []byte(tt.wantErr)) {
					t.Fatalf("walkBatches: %v, want errBadBatch mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("walkBatches = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// fixCRC recomputes the CRC-32C of the batch b.
func fixCRC(b []byte) {
	binary.BigEndian.PutUint32(b[batchCRCAt:], crc32.Checksum(b[batchAttributesAt:], castagnoli))
}

// FuzzWalkBatches feeds arbitrary fetch data to the lean consumer's batch walker: it must never panic,
// and what it accounts for must be consistent.
func FuzzWalkBatches(f *testing.F) {
	f.Add(testBatch(0, 0, nil, []byte("a"), []byte("bc")), int64(0))
	f.Add(append(testBatch(5, 0, []byte("k"), []byte("v")), testBatch(6, 0x20, nil, []byte{0, 0})...), int64(5))
	f.Add([]byte{}, int64(3))
	f.Fuzz(func(t *testing.T, data []byte, from int64) {
		w, err := walkBatches(data, from)
		if err != nil {
			return
		}
		if w.records < 0 || w.bytes < 0 || w.next < from {
			t.Fatalf("walkBatches(%x, %d) = %+v", data, from, w)
		}
		if w.bytes > int64(len(data)) {
			t.Fatalf("%d value bytes in %d bytes of data", w.bytes, len(data))
		}
	})
}

// walkRecordsPlain is walkRecords written the plain way, one storage.Varint per field: the reference
// FuzzWalkRecords holds the hand-inlined walk to.
func walkRecordsPlain(b []byte, count int, base, from int64) (n, bytes int64, what string) {
	for i := 0; i < count; i++ {
		length, k := storage.Varint(b)
		if k <= 0 || length < 0 || int64(len(b)-k) < length {
			return n, bytes, "length"
		}
		rec := b[k : k+int(length)]
		b = b[k+int(length):]
		if len(rec) < 1 {
			return n, bytes, "empty"
		}
		rec = rec[1:]
		if _, k = storage.Varint(rec); k <= 0 {
			return n, bytes, "timestamp delta"
		}
		rec = rec[k:]
		delta, k := storage.Varint(rec)
		if k <= 0 {
			return n, bytes, "offset delta"
		}
		rec = rec[k:]
		key, k := storage.Varint(rec)
		if k <= 0 || key < -1 || int64(len(rec)-k) < max(key, 0) {
			return n, bytes, "key"
		}
		rec = rec[k+int(max(key, 0)):]
		value, k := storage.Varint(rec)
		if k <= 0 || value < -1 || int64(len(rec)-k) < max(value, 0) {
			return n, bytes, "value"
		}
		if base+delta >= from {
			n++
			bytes += max(key, 0) + max(value, 0)
		}
	}
	return n, bytes, ""
}

// FuzzWalkRecords holds walkRecords to walkRecordsPlain on arbitrary record bytes: the same counts, and
// an error for the same field of the same input.
func FuzzWalkRecords(f *testing.F) {
	batch := testBatch(7, 0, []byte("key"), bytes.Repeat([]byte{'v'}, 100), nil, []byte("x"))
	f.Add(batch[storage.BatchHeaderSize:], 3, int64(8))
	f.Add(batch[storage.BatchHeaderSize:len(batch)-1], 3, int64(0))
	f.Add([]byte{0x02, 0x00}, 1, int64(0))
	f.Fuzz(func(t *testing.T, data []byte, count int, from int64) {
		count = min(max(count, 0), 1000)
		n, bytes, err := walkRecords(data, count, 7, from)
		wn, wbytes, what := walkRecordsPlain(data, count, 7, from)
		if n != wn || bytes != wbytes {
			t.Fatalf("walkRecords(%x, %d) = %d records, %d bytes; plain walk: %d, %d", data, count, n, bytes, wn, wbytes)
		}
		if (err == nil) != (what == "") || err != nil && !strings.HasSuffix(err.Error(), ": "+what) {
			t.Fatalf("walkRecords(%x, %d) error %v; plain walk: %q", data, count, err, what)
		}
	})
}

// BenchmarkWalkBatches measures the lean consumer's per-record cost on one megabyte of 100-byte records
// in batches of 160 records, the shape the 100-byte benchmark rows fetch.
func BenchmarkWalkBatches(b *testing.B) {
	values := make([][]byte, 160)
	for i := range values {
		values[i] = bytes.Repeat([]byte{'v'}, 100)
	}
	var data []byte
	var records int64
	for base := int64(0); len(data) < 1<<20; base += int64(len(values)) {
		data = append(data, testBatch(base, 0, nil, values...)...)
		records += int64(len(values))
	}
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		w, err := walkBatches(data, 0)
		if err != nil || w.records != records {
			b.Fatalf("walkBatches = %+v, %v; want %d records", w, err, records)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(int64(b.N)*records), "ns/record")
}

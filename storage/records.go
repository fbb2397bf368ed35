package storage

import (
	"encoding/binary"
	"fmt"
)

// Record is one decoded record of a v2 batch. Key and Value are nil for a null key/value (a record
// with a nil Value is a tombstone). Slices alias the decoded buffer.
type Record struct {
	Attributes     int8
	TimestampDelta int64
	OffsetDelta    int32
	Key, Value     []byte
	Headers        []RecordHeader
}

// RecordHeader is one record header; Value is nil for a null value.
type RecordHeader struct {
	Key   string
	Value []byte
}

// decodeRecords parses n records from b (the uncompressed records section of a batch).
func decodeRecords(b []byte, n int) ([]Record, error) {
	if n < 0 || n > len(b) {
		return nil, fmt.Errorf("%w: %d records in %d bytes", ErrInvalidBatch, n, len(b))
	}
	out := make([]Record, 0, n)
	for i := 0; i < n; i++ {
		length, k := Varint(b)
		if k <= 0 || length < 0 || int64(len(b)-k) < length {
			return nil, fmt.Errorf("%w: record %d length", ErrInvalidBatch, i)
		}
		rb := b[k : k+int(length)]
		b = b[k+int(length):]
		r, err := decodeRecord(rb)
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		out = append(out, r)
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last record", ErrInvalidBatch, len(b))
	}
	return out, nil
}

// Varint decodes the zigzag varint at the front of b as binary.Varint does (n <= 0 when b does not start
// with one), with the one- and two-byte cases decoded in place: they are most of a record's fields (a
// 100-byte record's length and value length take two), and record walks at high rates spend most of
// their time here.
func Varint(b []byte) (v int64, n int) {
	var u uint64
	switch {
	case len(b) > 0 && b[0] < 0x80:
		u = uint64(b[0])
		return int64(u>>1) ^ -int64(u&1), 1
	case len(b) > 1 && b[1] < 0x80:
		u = uint64(b[0]&0x7f) | uint64(b[1])<<7
		return int64(u>>1) ^ -int64(u&1), 2
	}
	return binary.Varint(b)
}

type recReader struct {
	b   []byte
	err error
}

func (r *recReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, k := Varint(r.b)
	if k <= 0 {
		r.err = fmt.Errorf("%w: bad varint", ErrInvalidBatch)
		return 0
	}
	r.b = r.b[k:]
	return v
}

// bytes reads a varint-length-prefixed byte string; -1 is null.
func (r *recReader) bytes() []byte {
	n := r.varint()
	if r.err != nil || n < 0 {
		return nil
	}
	if n > int64(len(r.b)) {
		r.err = fmt.Errorf("%w: field length %d beyond record", ErrInvalidBatch, n)
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func decodeRecord(b []byte) (Record, error) {
	if len(b) < 1 {
		return Record{}, fmt.Errorf("%w: empty record", ErrInvalidBatch)
	}
	r := recReader{b: b[1:]}
	rec := Record{Attributes: int8(b[0])}
	rec.TimestampDelta = r.varint()
	od := r.varint()
	rec.OffsetDelta = int32(od)
	rec.Key = r.bytes()
	rec.Value = r.bytes()
	nh := r.varint()
	if r.err == nil && (nh < 0 || nh > int64(len(r.b))) {
		r.err = fmt.Errorf("%w: %d headers", ErrInvalidBatch, nh)
	}
	for i := int64(0); i < nh && r.err == nil; i++ {
		k := r.bytes()
		v := r.bytes()
		rec.Headers = append(rec.Headers, RecordHeader{Key: string(k), Value: v})
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%w: trailing bytes in record", ErrInvalidBatch)
	}
	if r.err == nil && (od < 0 || od > 1<<31-1) {
		r.err = fmt.Errorf("%w: offset delta %d", ErrInvalidBatch, od)
	}
	return rec, r.err
}

func appendBytesField(b, v []byte, null bool) []byte {
	if null {
		return binary.AppendVarint(b, -1)
	}
	b = binary.AppendVarint(b, int64(len(v)))
	return append(b, v...)
}

// appendRecord encodes r (length-prefixed) onto b.
func appendRecord(b []byte, r Record) []byte {
	body := make([]byte, 0, 16+len(r.Key)+len(r.Value))
	body = append(body, byte(r.Attributes))
	body = binary.AppendVarint(body, r.TimestampDelta)
	body = binary.AppendVarint(body, int64(r.OffsetDelta))
	body = appendBytesField(body, r.Key, r.Key == nil)
	body = appendBytesField(body, r.Value, r.Value == nil)
	body = binary.AppendVarint(body, int64(len(r.Headers)))
	for _, h := range r.Headers {
		body = appendBytesField(body, []byte(h.Key), false)
		body = appendBytesField(body, h.Value, h.Value == nil)
	}
	b = binary.AppendVarint(b, int64(len(body)))
	return append(b, body...)
}

// BuildBatch encodes an uncompressed v2 batch from h (Length, CRC and NumRecords are computed) and
// records. It is exported for tests and tools that need valid batches.
func BuildBatch(h BatchHeader, records []Record) []byte {
	b := make([]byte, BatchHeaderSize, BatchHeaderSize+len(records)*32)
	h.Magic = 2
	h.NumRecords = int32(len(records))
	putHeader(b, h)
	for _, r := range records {
		b = appendRecord(b, r)
	}
	finishCRC(b)
	return b
}

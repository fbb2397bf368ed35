package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kbin"

	"github.com/stromhq/strom/storage"
)

// Record batch v2 header layout (Kafka's DefaultRecordBatch). Offsets into a
// batch; the CRC covers bytes from attributesPos to the end.
const (
	batchLengthPos     = 8
	magicPos           = 16
	crcPos             = 17
	attributesPos      = 21
	lastOffsetDeltaPos = 23
	baseTimestampPos   = 27
	maxTimestampPos    = 35
	recordsCountPos    = 57
	batchHeaderSize    = 61
)

var errBadRecord = errors.New("malformed record")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// setBatchCRC recomputes the CRC of a v2 batch after header fields inside the
// CRC (attributes, max timestamp) were changed.
func setBatchCRC(batch []byte) {
	binary.BigEndian.PutUint32(batch[crcPos:], crc32.Checksum(batch[attributesPos:], castagnoli))
}

// codecByName maps compression.type values to codecs; ok is false for
// "producer" (keep the producer's codec).
func codecByName(name string) (int8, bool) {
	switch name {
	case "uncompressed":
		return storage.CompressionNone, true
	case "gzip":
		return storage.CompressionGzip, true
	case "snappy":
		return storage.CompressionSnappy, true
	case "lz4":
		return storage.CompressionLZ4, true
	case "zstd":
		return storage.CompressionZstd, true
	}
	return 0, false
}

// recordView is one decoded record of a v2 batch; slices alias the
// (decompressed) records buffer.
type recordView struct {
	attributes     int8
	timestampDelta int64
	offsetDelta    int32
	key            []byte // nil when the key is null
	value          []byte // nil when the value is null
	headers        []byte // encoded headers (count + entries), kept verbatim
	raw            []byte // the whole record including its length prefix
}

// parseRecords decodes every record of a decompressed records section.
func parseRecords(src []byte, fn func(i int, r recordView) error) (int, error) {
	n := 0
	for len(src) > 0 {
		start := src
		l, after, ok := takeVarint(src)
		if !ok || l < 0 || l > int64(len(after)) {
			return n, fmt.Errorf("%w: record %d length", errBadRecord, n)
		}
		k := len(src) - len(after)
		body := after[:l]
		src = after[l:]
		var r recordView
		r.raw = start[:k+int(l)]
		if len(body) < 1 {
			return n, fmt.Errorf("%w: record %d empty", errBadRecord, n)
		}
		r.attributes = int8(body[0])
		body = body[1:]
		if r.timestampDelta, body, ok = takeVarlong(body); !ok {
			return n, fmt.Errorf("%w: record %d timestamp", errBadRecord, n)
		}
		var od int64
		if od, body, ok = takeVarint(body); !ok {
			return n, fmt.Errorf("%w: record %d offset delta", errBadRecord, n)
		}
		r.offsetDelta = int32(od)
		if r.key, body, ok = takeVarBytes(body); !ok {
			return n, fmt.Errorf("%w: record %d key", errBadRecord, n)
		}
		if r.value, body, ok = takeVarBytes(body); !ok {
			return n, fmt.Errorf("%w: record %d value", errBadRecord, n)
		}
		r.headers = body
		nh, rest, ok := takeVarint(body)
		if !ok || nh < 0 {
			return n, fmt.Errorf("%w: record %d header count", errBadRecord, n)
		}
		for h := int64(0); h < nh; h++ {
			var hk []byte
			if hk, rest, ok = takeVarBytes(rest); !ok || hk == nil {
				return n, fmt.Errorf("%w: record %d header key", errBadRecord, n)
			}
			if _, rest, ok = takeVarBytes(rest); !ok {
				return n, fmt.Errorf("%w: record %d header value", errBadRecord, n)
			}
		}
		if len(rest) != 0 {
			return n, fmt.Errorf("%w: record %d has %d trailing bytes", errBadRecord, n, len(rest))
		}
		if err := fn(n, r); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// takeVarint and takeVarlong decode a zigzag varint at the start of b and
// return it with the rest of b. Produce validation walks every record, and
// nearly all of a record's varints (attributes aside: its length, deltas,
// key and value lengths, header count) fit one or two bytes, so those are
// decoded inline; longer ones go to kbin, which also rejects overlong
// encodings (a 32-bit varint of more than 5 bytes).
func takeVarint(b []byte) (int64, []byte, bool) {
	if len(b) > 0 && b[0] < 0x80 {
		return unzigzag(uint64(b[0])), b[1:], true
	}
	if len(b) > 1 && b[1] < 0x80 {
		return unzigzag(uint64(b[0]&0x7f) | uint64(b[1])<<7), b[2:], true
	}
	v, k := kbin.Varint(b)
	if k <= 0 {
		return 0, nil, false
	}
	return int64(v), b[k:], true
}

func takeVarlong(b []byte) (int64, []byte, bool) {
	if len(b) > 0 && b[0] < 0x80 {
		return unzigzag(uint64(b[0])), b[1:], true
	}
	if len(b) > 1 && b[1] < 0x80 {
		return unzigzag(uint64(b[0]&0x7f) | uint64(b[1])<<7), b[2:], true
	}
	v, k := kbin.Varlong(b)
	if k <= 0 {
		return 0, nil, false
	}
	return v, b[k:], true
}

func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

func takeVarBytes(b []byte) ([]byte, []byte, bool) {
	l, rest, ok := takeVarint(b)
	if !ok || l < -1 || l > int64(len(rest)) {
		return nil, nil, false
	}
	if l == -1 {
		return nil, rest, true
	}
	return rest[:l:l], rest[l:], true
}

// appendRecord re-encodes r with offset delta od (used when a batch is
// rebuilt: recompression or wrong inner offsets).
func appendRecord(dst []byte, r recordView, od int32) []byte {
	var body []byte
	body = append(body, byte(r.attributes))
	body = kbin.AppendVarlong(body, r.timestampDelta)
	body = kbin.AppendVarint(body, od)
	if r.key == nil {
		body = kbin.AppendVarint(body, -1)
	} else {
		body = kbin.AppendVarint(body, int32(len(r.key)))
		body = append(body, r.key...)
	}
	if r.value == nil {
		body = kbin.AppendVarint(body, -1)
	} else {
		body = kbin.AppendVarint(body, int32(len(r.value)))
		body = append(body, r.value...)
	}
	body = append(body, r.headers...)
	dst = kbin.AppendVarint(dst, int32(len(body)))
	return append(dst, body...)
}

// rebuildBatch returns a new batch with the header of old, the given records
// (inner offsets renumbered from 0) compressed with codec, and a fresh
// length and CRC.
func rebuildBatch(old []byte, recs []recordView, codec int8) ([]byte, error) {
	var raw []byte
	for i, r := range recs {
		raw = appendRecord(raw, r, int32(i))
	}
	payload, err := storage.Compress(codec, raw)
	if err != nil {
		return nil, fmt.Errorf("compress batch: %w", err)
	}
	out := make([]byte, batchHeaderSize, batchHeaderSize+len(payload))
	copy(out, old[:batchHeaderSize])
	out = append(out, payload...)
	binary.BigEndian.PutUint32(out[batchLengthPos:], uint32(len(out)-12))
	attrs := binary.BigEndian.Uint16(out[attributesPos:])
	attrs = attrs&^7 | uint16(codec)
	binary.BigEndian.PutUint16(out[attributesPos:], attrs)
	binary.BigEndian.PutUint32(out[lastOffsetDeltaPos:], uint32(len(recs)-1))
	binary.BigEndian.PutUint32(out[recordsCountPos:], uint32(len(recs)))
	setBatchCRC(out)
	return out, nil
}

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
//
// Produce validation runs it over every record a client sends, so its varints
// are decoded in the loop: nearly every one (a record's length, deltas, key
// and value lengths, header count) is one or two bytes long, and a call per
// field cost more than the decoding (no decoder is small enough for Go to
// inline). Each field takes the same three-way step: one byte, two bytes, or
// takeVarint/takeVarlong for anything longer, cut or bad.
func parseRecords(src []byte, fn func(i int, r recordView) error) (int, error) {
	n := 0
	p := 0 // read position in src
	for p < len(src) {
		start := p
		var l int64
		if p+1 < len(src) && src[p] < 0x80 {
			l, p = unzigzag(uint64(src[p])), p+1
		} else if p+1 < len(src) && src[p+1] < 0x80 {
			l, p = unzigzag(uint64(src[p]&0x7f)|uint64(src[p+1])<<7), p+2
		} else if l, p = varintFrom(src, p); p < 0 {
			return n, fmt.Errorf("%w: record %d length", errBadRecord, n)
		}
		if l < 0 || l > int64(len(src)-p) {
			return n, fmt.Errorf("%w: record %d length", errBadRecord, n)
		}
		if l < 1 {
			return n, fmt.Errorf("%w: record %d empty", errBadRecord, n)
		}
		end := p + int(l)
		body := src[:end] // the record is body[p:]
		r := recordView{raw: src[start:end:end], attributes: int8(body[p])}
		p++
		if p+1 < len(body) && body[p] < 0x80 {
			r.timestampDelta, p = unzigzag(uint64(body[p])), p+1
		} else if p+1 < len(body) && body[p+1] < 0x80 {
			r.timestampDelta, p = unzigzag(uint64(body[p]&0x7f)|uint64(body[p+1])<<7), p+2
		} else if r.timestampDelta, p = varlongFrom(body, p); p < 0 {
			return n, fmt.Errorf("%w: record %d timestamp", errBadRecord, n)
		}
		var od int64
		if p+1 < len(body) && body[p] < 0x80 {
			od, p = unzigzag(uint64(body[p])), p+1
		} else if p+1 < len(body) && body[p+1] < 0x80 {
			od, p = unzigzag(uint64(body[p]&0x7f)|uint64(body[p+1])<<7), p+2
		} else if od, p = varintFrom(body, p); p < 0 {
			return n, fmt.Errorf("%w: record %d offset delta", errBadRecord, n)
		}
		r.offsetDelta = int32(od)
		var kl int64
		if p+1 < len(body) && body[p] < 0x80 {
			kl, p = unzigzag(uint64(body[p])), p+1
		} else if p+1 < len(body) && body[p+1] < 0x80 {
			kl, p = unzigzag(uint64(body[p]&0x7f)|uint64(body[p+1])<<7), p+2
		} else if kl, p = varintFrom(body, p); p < 0 {
			return n, fmt.Errorf("%w: record %d key", errBadRecord, n)
		}
		if kl < -1 || kl > int64(len(body)-p) {
			return n, fmt.Errorf("%w: record %d key", errBadRecord, n)
		}
		if kl >= 0 {
			r.key, p = body[p:p+int(kl):p+int(kl)], p+int(kl)
		}
		var vl int64
		if p+1 < len(body) && body[p] < 0x80 {
			vl, p = unzigzag(uint64(body[p])), p+1
		} else if p+1 < len(body) && body[p+1] < 0x80 {
			vl, p = unzigzag(uint64(body[p]&0x7f)|uint64(body[p+1])<<7), p+2
		} else if vl, p = varintFrom(body, p); p < 0 {
			return n, fmt.Errorf("%w: record %d value", errBadRecord, n)
		}
		if vl < -1 || vl > int64(len(body)-p) {
			return n, fmt.Errorf("%w: record %d value", errBadRecord, n)
		}
		if vl >= 0 {
			r.value, p = body[p:p+int(vl):p+int(vl)], p+int(vl)
		}
		r.headers = body[p:]
		var nh int64
		if p < len(body) && body[p] < 0x80 {
			nh, p = unzigzag(uint64(body[p])), p+1 // often the record's last byte
		} else if nh, p = varintFrom(body, p); p < 0 {
			return n, fmt.Errorf("%w: record %d header count", errBadRecord, n)
		}
		if nh < 0 {
			return n, fmt.Errorf("%w: record %d header count", errBadRecord, n)
		}
		rest := body[p:]
		for h := int64(0); h < nh; h++ {
			var hk []byte
			var ok bool
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
		p = end
	}
	return n, nil
}

// varintFrom and varlongFrom are takeVarint and takeVarlong at b[p:] for
// parseRecords: the value and the position after it, or -1 for that
// position when b holds no valid varint there.
func varintFrom(b []byte, p int) (int64, int) {
	v, rest, ok := takeVarint(b[p:])
	if !ok {
		return 0, -1
	}
	return v, len(b) - len(rest)
}

func varlongFrom(b []byte, p int) (int64, int) {
	v, rest, ok := takeVarlong(b[p:])
	if !ok {
		return 0, -1
	}
	return v, len(b) - len(rest)
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

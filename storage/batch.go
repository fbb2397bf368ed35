package storage

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Layout of the fixed v2 record-batch header (Kafka protocol guide, "Record Batch"). All integers are
// big endian. The CRC covers the bytes from the attributes field to the end of the batch, so the base
// offset and the partition leader epoch can be rewritten in place without recomputing it.
const (
	offBaseOffset      = 0
	offLength          = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offBaseTimestamp   = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offNumRecords      = 57

	// BatchHeaderSize is the size of the fixed v2 batch header, records start right after it.
	BatchHeaderSize = 61
	// batchLengthOverhead is the number of header bytes not counted by the batchLength field.
	batchLengthOverhead = 12
	// MaxBatchSize bounds the size of one batch we accept from disk or network (Kafka's own limit is
	// message.max.bytes, ~1 MiB by default; 1 GiB leaves room for any configuration while stopping a
	// corrupt length from making us allocate gigabytes).
	MaxBatchSize = 1 << 30
)

// Attribute bits of a v2 batch.
const (
	attrCompressionMask = 0x07
	attrTimestampType   = 0x08
	attrTransactional   = 0x10
	attrControl         = 0x20
)

// Compression codecs as encoded in the low three attribute bits.
const (
	CompressionNone   int8 = 0
	CompressionGzip   int8 = 1
	CompressionSnappy int8 = 2
	CompressionLZ4    int8 = 3
	CompressionZstd   int8 = 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// BatchHeader is the decoded fixed header of a v2 record batch.
type BatchHeader struct {
	BaseOffset           int64
	Length               int32 // the batchLength field: size of the batch minus 12
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	BaseTimestamp        int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	NumRecords           int32
}

// ParseBatchHeader decodes the header of the batch b starts with. It checks that b holds at least the
// header, that the magic is 2, and that the length and offset delta are plausible; it does not require
// the whole batch to be present (SplitBatches does) and does not check the CRC (VerifyCRC does).
func ParseBatchHeader(b []byte) (BatchHeader, error) {
	if len(b) < BatchHeaderSize {
		return BatchHeader{}, fmt.Errorf("%w: %d bytes, header needs %d", ErrTornBatch, len(b), BatchHeaderSize)
	}
	h := BatchHeader{
		BaseOffset:           int64(binary.BigEndian.Uint64(b[offBaseOffset:])),
		Length:               int32(binary.BigEndian.Uint32(b[offLength:])),
		PartitionLeaderEpoch: int32(binary.BigEndian.Uint32(b[offLeaderEpoch:])),
		Magic:                int8(b[offMagic]),
		CRC:                  binary.BigEndian.Uint32(b[offCRC:]),
		Attributes:           int16(binary.BigEndian.Uint16(b[offAttributes:])),
		LastOffsetDelta:      int32(binary.BigEndian.Uint32(b[offLastOffsetDelta:])),
		BaseTimestamp:        int64(binary.BigEndian.Uint64(b[offBaseTimestamp:])),
		MaxTimestamp:         int64(binary.BigEndian.Uint64(b[offMaxTimestamp:])),
		ProducerID:           int64(binary.BigEndian.Uint64(b[offProducerID:])),
		ProducerEpoch:        int16(binary.BigEndian.Uint16(b[offProducerEpoch:])),
		BaseSequence:         int32(binary.BigEndian.Uint32(b[offBaseSequence:])),
		NumRecords:           int32(binary.BigEndian.Uint32(b[offNumRecords:])),
	}
	if h.Magic != 2 {
		return h, fmt.Errorf("%w: magic %d, want 2", ErrInvalidBatch, h.Magic)
	}
	if h.Length < BatchHeaderSize-batchLengthOverhead || int64(h.Length) > MaxBatchSize-batchLengthOverhead {
		return h, fmt.Errorf("%w: batch length %d", ErrInvalidBatch, h.Length)
	}
	if h.LastOffsetDelta < 0 || h.NumRecords < 0 || h.BaseOffset < 0 {
		return h, fmt.Errorf("%w: base offset %d, last offset delta %d, records %d", ErrInvalidBatch,
			h.BaseOffset, h.LastOffsetDelta, h.NumRecords)
	}
	if h.BaseOffset > 1<<62 {
		return h, fmt.Errorf("%w: base offset %d too large", ErrInvalidBatch, h.BaseOffset)
	}
	return h, nil
}

// LastOffset is the offset of the last record the batch was created with (compaction may have removed
// it, the delta stays).
func (h BatchHeader) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// Size is the total size of the batch in bytes.
func (h BatchHeader) Size() int { return batchLengthOverhead + int(h.Length) }

// IsTransactional reports the transactional attribute bit.
func (h BatchHeader) IsTransactional() bool { return h.Attributes&attrTransactional != 0 }

// IsControl reports the control attribute bit (commit/abort markers).
func (h BatchHeader) IsControl() bool { return h.Attributes&attrControl != 0 }

// Compression returns the codec of the records (CompressionNone ... CompressionZstd).
func (h BatchHeader) Compression() int8 { return int8(h.Attributes & attrCompressionMask) }

// TimestampType is 0 for CreateTime and 1 for LogAppendTime.
func (h BatchHeader) TimestampType() int8 { return int8(h.Attributes >> 3 & 1) }

// VerifyCRC checks the CRC-32C of the complete batch in batch (header included).
func VerifyCRC(batch []byte) error {
	if len(batch) < BatchHeaderSize {
		return fmt.Errorf("%w: %d bytes, header needs %d", ErrTornBatch, len(batch), BatchHeaderSize)
	}
	want := binary.BigEndian.Uint32(batch[offCRC:])
	if got := crc32.Checksum(batch[offAttributes:], castagnoli); got != want {
		return fmt.Errorf("%w: computed %08x, header says %08x", ErrCRCMismatch, got, want)
	}
	return nil
}

// SetBaseOffset rewrites the base offset of the batch in place. The field lies outside the CRC.
// batch must hold at least the header.
func SetBaseOffset(batch []byte, off int64) {
	binary.BigEndian.PutUint64(batch[offBaseOffset:], uint64(off))
}

// SetPartitionLeaderEpoch rewrites the partition leader epoch of the batch in place. The field lies
// outside the CRC. batch must hold at least the header.
func SetPartitionLeaderEpoch(batch []byte, e int32) {
	binary.BigEndian.PutUint32(batch[offLeaderEpoch:], uint32(e))
}

// SplitBatches walks the concatenated batches in b, calling yield with each header and the batch's bytes
// (a subslice of b), until yield returns false or b is exhausted. It returns an error wrapping
// ErrTornBatch when b ends inside a batch, or ErrInvalidBatch when a header is malformed; the error
// names the byte position. It does not verify CRCs.
func SplitBatches(b []byte, yield func(h BatchHeader, batch []byte) bool) error {
	pos := 0
	for pos < len(b) {
		h, err := ParseBatchHeader(b[pos:])
		if err != nil {
			return fmt.Errorf("batch at position %d: %w", pos, err)
		}
		if h.Size() > len(b)-pos {
			return fmt.Errorf("batch at position %d: %w: size %d, only %d bytes left", pos, ErrTornBatch,
				h.Size(), len(b)-pos)
		}
		if !yield(h, b[pos:pos+h.Size()]) {
			return nil
		}
		pos += h.Size()
	}
	return nil
}

// putHeader encodes h into the first BatchHeaderSize bytes of b without touching the CRC field's
// correctness; callers recompute the CRC with finishCRC after writing the records.
func putHeader(b []byte, h BatchHeader) {
	binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(h.BaseOffset))
	binary.BigEndian.PutUint32(b[offLength:], uint32(h.Length))
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(h.PartitionLeaderEpoch))
	b[offMagic] = byte(h.Magic)
	binary.BigEndian.PutUint32(b[offCRC:], h.CRC)
	binary.BigEndian.PutUint16(b[offAttributes:], uint16(h.Attributes))
	binary.BigEndian.PutUint32(b[offLastOffsetDelta:], uint32(h.LastOffsetDelta))
	binary.BigEndian.PutUint64(b[offBaseTimestamp:], uint64(h.BaseTimestamp))
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(h.MaxTimestamp))
	binary.BigEndian.PutUint64(b[offProducerID:], uint64(h.ProducerID))
	binary.BigEndian.PutUint16(b[offProducerEpoch:], uint16(h.ProducerEpoch))
	binary.BigEndian.PutUint32(b[offBaseSequence:], uint32(h.BaseSequence))
	binary.BigEndian.PutUint32(b[offNumRecords:], uint32(h.NumRecords))
}

// finishCRC sets the length and CRC fields of a fully written batch.
func finishCRC(batch []byte) {
	binary.BigEndian.PutUint32(batch[offLength:], uint32(len(batch)-batchLengthOverhead))
	binary.BigEndian.PutUint32(batch[offCRC:], crc32.Checksum(batch[offAttributes:], castagnoli))
}

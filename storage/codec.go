package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/snappy/xerial"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// MaxDecompressed bounds the decompressed records section of one batch, so a small hostile or corrupt
// batch cannot make the broker (validating a produce) or compaction allocate without limit.
const MaxDecompressed = 128 << 20

// xerialMagic starts snappy data framed by Java's snappy-java (what the Java producer writes).
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// zstd coders are safe for concurrent EncodeAll/DecodeAll and costly to build, so one of each serves the
// process.
var (
	zstdDecOnce sync.Once
	zstdDec     *zstd.Decoder
	zstdDecErr  error
	zstdEncOnce sync.Once
	zstdEnc     *zstd.Encoder
	zstdEncErr  error
)

// Decompress returns the uncompressed records section (the bytes after the 61-byte header) of a batch
// compressed with codec. Snappy is read both as a raw block (franz-go, librdkafka) and in snappy-java's
// framing (the Java clients). Output above MaxDecompressed is ErrDecompressedTooLarge.
func Decompress(codec int8, b []byte) ([]byte, error) {
	switch codec {
	case CompressionNone:
		return b, nil
	case CompressionGzip:
		r, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		defer r.Close()
		return readLimited(r, "gzip")
	case CompressionSnappy:
		if bytes.HasPrefix(b, xerialMagic) {
			return decodeXerial(b)
		}
		return decodeSnappyBlock(b)
	case CompressionLZ4:
		return readLimited(lz4.NewReader(bytes.NewReader(b)), "lz4")
	case CompressionZstd:
		zstdDecOnce.Do(func() {
			zstdDec, zstdDecErr = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(MaxDecompressed))
		})
		if zstdDecErr != nil {
			return nil, fmt.Errorf("zstd: %w", zstdDecErr)
		}
		out, err := zstdDec.DecodeAll(b, nil)
		if err != nil {
			if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) {
				return nil, fmt.Errorf("zstd: %w", ErrDecompressedTooLarge)
			}
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: %d", ErrUnsupportedCompression, codec)
}

func readLimited(r io.Reader, what string) ([]byte, error) {
	out, err := io.ReadAll(io.LimitReader(r, MaxDecompressed+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if len(out) > MaxDecompressed {
		return nil, fmt.Errorf("%s: %w", what, ErrDecompressedTooLarge)
	}
	return out, nil
}

func decodeSnappyBlock(b []byte) ([]byte, error) {
	n, err := s2.DecodedLen(b)
	if err != nil {
		return nil, fmt.Errorf("snappy: %w", err)
	}
	if n > MaxDecompressed {
		return nil, fmt.Errorf("snappy: %w", ErrDecompressedTooLarge)
	}
	out, err := s2.Decode(nil, b)
	if err != nil {
		return nil, fmt.Errorf("snappy: %w", err)
	}
	return out, nil
}

// decodeXerial decodes snappy-java's framing: magic, two int32 versions, then chunks of
// (int32 length, snappy block).
func decodeXerial(b []byte) ([]byte, error) {
	if len(b) < 16 {
		return nil, fmt.Errorf("snappy: short xerial header")
	}
	b = b[16:]
	var out []byte
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, fmt.Errorf("snappy: torn xerial chunk")
		}
		n := int(binary.BigEndian.Uint32(b))
		if n < 0 || n > len(b)-4 {
			return nil, fmt.Errorf("snappy: xerial chunk length %d", n)
		}
		chunk, err := decodeSnappyBlock(b[4 : 4+n])
		if err != nil {
			return nil, err
		}
		if len(out)+len(chunk) > MaxDecompressed {
			return nil, fmt.Errorf("snappy: %w", ErrDecompressedTooLarge)
		}
		out = append(out, chunk...)
		b = b[4+n:]
	}
	return out, nil
}

// Compress encodes a records section with codec as Kafka's own broker does when it recompresses:
// snappy in snappy-java's framing, lz4 as a frame. Every Kafka client reads these forms.
func Compress(codec int8, b []byte) ([]byte, error) {
	switch codec {
	case CompressionNone:
		return b, nil
	case CompressionGzip:
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		if _, err := w.Write(b); err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return buf.Bytes(), nil
	case CompressionSnappy:
		return xerial.Encode(nil, b), nil
	case CompressionLZ4:
		var buf bytes.Buffer
		w := lz4.NewWriter(&buf)
		if _, err := w.Write(b); err != nil {
			return nil, fmt.Errorf("lz4: %w", err)
		}
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("lz4: %w", err)
		}
		return buf.Bytes(), nil
	case CompressionZstd:
		zstdEncOnce.Do(func() { zstdEnc, zstdEncErr = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1)) })
		if zstdEncErr != nil {
			return nil, fmt.Errorf("zstd: %w", zstdEncErr)
		}
		return zstdEnc.EncodeAll(b, nil), nil
	}
	return nil, fmt.Errorf("%w: %d", ErrUnsupportedCompression, codec)
}

// batchRecords decodes the records of a complete batch, decompressing as needed.
func batchRecords(h BatchHeader, batch []byte) ([]Record, error) {
	raw, err := Decompress(h.Compression(), batch[BatchHeaderSize:])
	if err != nil {
		return nil, fmt.Errorf("batch at offset %d: %w", h.BaseOffset, err)
	}
	recs, err := decodeRecords(raw, int(h.NumRecords))
	if err != nil {
		return nil, fmt.Errorf("batch at offset %d: %w", h.BaseOffset, err)
	}
	return recs, nil
}

// encodeBatch builds a complete batch from h and records, compressing them with h's codec. h's
// NumRecords, Length and CRC are computed; everything else is kept.
func encodeBatch(h BatchHeader, records []Record) ([]byte, error) {
	var raw []byte
	for _, r := range records {
		raw = appendRecord(raw, r)
	}
	body, err := Compress(h.Compression(), raw)
	if err != nil {
		return nil, err
	}
	b := make([]byte, BatchHeaderSize, BatchHeaderSize+len(body))
	h.Magic = 2
	h.NumRecords = int32(len(records))
	putHeader(b, h)
	b = append(b, body...)
	finishCRC(b)
	return b, nil
}

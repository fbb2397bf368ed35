package storage

import (
	"errors"
	"fmt"
)

// Sentinel errors of package storage. Match them with errors.Is; some are wrapped with context (file,
// position, offsets) by the function that returns them.
var (
	// ErrOffsetOutOfRange is returned by Read for an offset below LogStartOffset or above EndOffset, and by
	// Append for a batch whose offsets go backwards.
	ErrOffsetOutOfRange = errors.New("storage: offset out of range")
	// ErrCorrupt reports bytes on disk that do not form a valid record batch (bad length, magic or CRC)
	// where a valid one was expected. It is wrapped by *CorruptError, which names the file and position.
	ErrCorrupt = errors.New("storage: corrupt segment data")
	// ErrClosed is returned by every operation on a Log after Close.
	ErrClosed = errors.New("storage: log closed")
	// ErrInvalidBatch reports a record batch that is malformed: too short, wrong magic, impossible length
	// or offset delta.
	ErrInvalidBatch = errors.New("storage: invalid record batch")
	// ErrTornBatch reports a batch frame cut short: the bytes end before the batch does. It wraps
	// ErrInvalidBatch, so callers that do not care about the difference can match that instead.
	ErrTornBatch = fmt.Errorf("%w: torn (incomplete) batch", ErrInvalidBatch)
	// ErrCRCMismatch reports a batch whose CRC-32C does not match its contents. It wraps ErrInvalidBatch.
	ErrCRCMismatch = fmt.Errorf("%w: crc mismatch", ErrInvalidBatch)
	// ErrUnsupportedCompression is returned by Compress, Decompress and compaction for an unknown codec.
	ErrUnsupportedCompression = errors.New("storage: unsupported compression codec")
	// ErrDecompressedTooLarge is returned by Decompress when a batch inflates beyond MaxDecompressed.
	ErrDecompressedTooLarge = errors.New("storage: decompressed records exceed the limit")
)

// CorruptError locates corrupt data in a segment file. It matches ErrCorrupt with errors.Is, and the
// underlying decode error (ErrInvalidBatch, ErrCRCMismatch, ...) with errors.Is as well.
type CorruptError struct {
	File     string // path of the segment file
	Position int64  // byte position of the first invalid batch in File
	Err      error  // what was wrong
}

// Error implements error.
func (e *CorruptError) Error() string {
	return fmt.Sprintf("storage: corrupt data in %s at position %d: %v", e.File, e.Position, e.Err)
}

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// Unwrap exposes the decode error.
func (e *CorruptError) Unwrap() error { return e.Err }

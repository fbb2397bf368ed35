package storage

import (
	"fmt"
	"io"
	"os"
	"sync/atomic"
)

// Slice is a run of whole batches in one segment file, returned by Read. It keeps the file open (by
// reference) until Release, so it stays valid even if retention or compaction deletes the segment
// meanwhile. A Slice is used by one goroutine; Release it exactly once when done.
type Slice struct {
	ref      *fileRef // nil for an empty slice
	file     string
	pos      int64
	n        int
	released atomic.Bool
}

// Len is the number of bytes in the slice.
func (s *Slice) Len() int {
	if s == nil {
		return 0
	}
	return s.n
}

// File returns the open file, position and length backing the slice for callers that want to issue
// their own sendfile/splice. The file must not be used after Release.
func (s *Slice) File() (*os.File, int64, int) {
	if s == nil || s.ref == nil {
		return nil, 0, 0
	}
	return s.ref.f, s.pos, s.n
}

// Bytes reads the slice into a new buffer.
func (s *Slice) Bytes() ([]byte, error) {
	if s.Len() == 0 {
		return nil, nil
	}
	if s.released.Load() {
		return nil, fmt.Errorf("read slice of %s: %w", s.file, ErrClosed)
	}
	b := make([]byte, s.n)
	if _, err := s.ref.f.ReadAt(b, s.pos); err != nil {
		return nil, fmt.Errorf("read %d bytes of %s at %d: %w", s.n, s.file, s.pos, err)
	}
	return b, nil
}

// ReadInto reads the slice into dst, which must be exactly Len bytes long: callers that assemble a
// response in their own buffer read the records straight into place instead of through Bytes' copy.
func (s *Slice) ReadInto(dst []byte) error {
	if len(dst) != s.Len() {
		return fmt.Errorf("read slice of %s: destination holds %d bytes, slice %d", s.file, len(dst), s.Len())
	}
	if s.Len() == 0 {
		return nil
	}
	if s.released.Load() {
		return fmt.Errorf("read slice of %s: %w", s.file, ErrClosed)
	}
	if _, err := s.ref.f.ReadAt(dst, s.pos); err != nil {
		return fmt.Errorf("read %d bytes of %s at %d: %w", s.n, s.file, s.pos, err)
	}
	return nil
}

// WriteTo writes the slice to w. When w is a socket (or anything exposing syscall.Conn, such as
// *net.TCPConn) the bytes go by sendfile(2) with an explicit offset, so concurrent readers of the same
// file do not interfere; otherwise it copies through a buffer.
func (s *Slice) WriteTo(w io.Writer) (int64, error) {
	if s.Len() == 0 {
		return 0, nil
	}
	if s.released.Load() {
		return 0, fmt.Errorf("write slice of %s: %w", s.file, ErrClosed)
	}
	if n, handled, err := sendfileTo(w, s.ref.f, s.pos, s.n); handled {
		return n, err
	}
	return io.Copy(w, io.NewSectionReader(s.ref.f, s.pos, int64(s.n)))
}

// Release drops the slice's reference to its file. Later calls are no-ops.
func (s *Slice) Release() {
	if s == nil || s.ref == nil || !s.released.CompareAndSwap(false, true) {
		return
	}
	s.ref.release()
}

// Close is Release, for io.Closer.
func (s *Slice) Close() error {
	s.Release()
	return nil
}

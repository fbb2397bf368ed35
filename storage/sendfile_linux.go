package storage

import (
	"errors"
	"io"
	"os"
	"syscall"
)

// sendfileTo copies n bytes of f from pos to w with sendfile(2) when w exposes its descriptor. It
// passes an explicit offset, which leaves f's shared file position alone. handled is false when
// sendfile cannot be used (w is not a syscall.Conn, or the kernel refuses the pair before any byte
// moved), in which case nothing was written.
func sendfileTo(w io.Writer, f *os.File, pos int64, n int) (int64, bool, error) {
	sc, ok := w.(syscall.Conn)
	if !ok {
		return 0, false, nil
	}
	dst, err := sc.SyscallConn()
	if err != nil {
		return 0, false, nil
	}
	src, err := f.SyscallConn()
	if err != nil {
		return 0, false, nil
	}
	var written int64
	var serr error
	unsupported := false
	off := pos
	remain := n
	cerr := src.Read(func(sfd uintptr) bool {
		werr := dst.Write(func(dfd uintptr) bool {
			for remain > 0 {
				chunk := min(remain, 1<<30)
				m, err := syscall.Sendfile(int(dfd), int(sfd), &off, chunk)
				if m > 0 {
					written += int64(m)
					remain -= m
				}
				switch {
				case errors.Is(err, syscall.EAGAIN):
					return false // wait until writable, then call again
				case errors.Is(err, syscall.EINTR):
					continue
				case errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOSYS) || errors.Is(err, syscall.EOPNOTSUPP):
					if written == 0 {
						unsupported = true
					} else {
						serr = err
					}
					return true
				case err != nil:
					serr = err
					return true
				case m == 0:
					serr = io.ErrUnexpectedEOF // file shorter than the slice (truncated meanwhile)
					return true
				}
			}
			return true
		})
		if werr != nil && serr == nil {
			serr = werr
		}
		return true
	})
	if unsupported {
		return 0, false, nil
	}
	if cerr != nil && serr == nil {
		serr = cerr
	}
	if serr != nil {
		return written, true, &os.SyscallError{Syscall: "sendfile", Err: serr}
	}
	return written, true, nil
}

package storage

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing n bytes of f at off to the device without waiting
// for it (sync_file_range SYNC_FILE_RANGE_WRITE). The fdatasync that makes them durable then finds
// them written or in flight instead of starting all of them itself, so group commit's fsync, and the
// acks=all answers waiting on it, take less time. Advisory: an error only forgoes the head start.
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}

// fdatasync flushes file data and the metadata needed to read it (the size), skipping mtime updates.
func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}

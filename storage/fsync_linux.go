package storage

import (
	"os"
	"syscall"
)

// fdatasync flushes file data and the metadata needed to read it (the size), skipping mtime updates.
func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}

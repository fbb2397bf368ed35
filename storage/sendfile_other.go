//go:build !linux

package storage

import (
	"io"
	"os"
)

// sendfileTo is only implemented on Linux; elsewhere Slice.WriteTo copies.
func sendfileTo(io.Writer, *os.File, int64, int) (int64, bool, error) { return 0, false, nil }

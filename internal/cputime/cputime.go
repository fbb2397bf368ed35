// Package cputime reads the CPU time this process has used, for benchmarks that report CPU per unit of
// work next to throughput.
package cputime

import (
	"syscall"
	"time"
)

// Process returns the user and system CPU seconds this process has used; 0 where getrusage fails.
func Process() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

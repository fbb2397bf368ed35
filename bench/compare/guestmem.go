package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// pageReportingOrder is the guest kernel's free page reporting knob (virtio-balloon). A guest with
// reporting on hands every free block of at least this buddy order back to its host a few seconds after
// it is freed; the next touch of such memory faults in the host. On the Firecracker VMs these benchmarks
// run on, that makes writing into fresh page cache 4x slower (dd of 2 GiB with fdatasync: 340 MB/s when
// the memory was freed 15 s before, 1.5 GB/s when it was freed just before), so a produce run measures
// the host's fault rate rather than the broker, and a run's figure depends on how long ago the previous
// one freed its files.
const pageReportingOrder = "/sys/module/page_reporting/parameters/page_reporting_order"

// reportingPausedOrder is above any buddy order (MAX_PAGE_ORDER is 10 on x86-64), so no free block
// qualifies for reporting while it is set.
const reportingPausedOrder = 11

// guestMemory is the state of free page reporting around a run.
type guestMemory struct {
	path  string
	was   int  // the order found before the run
	held  bool // reporting was paused by this run and must be restored
	state string
}

// holdGuestMemory pauses free page reporting at path for the run when the machine has it and this
// process may change it (root), so both clusters write into memory the guest keeps. The change is
// the same for both clusters and is undone by release; what was done is in describe's answer.
func holdGuestMemory(path string, hold bool) *guestMemory {
	g := &guestMemory{path: path}
	raw, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		g.state = "free page reporting: not present (not a balloon guest, or the kernel lacks it)"
		return g
	case err != nil:
		g.state = fmt.Sprintf("free page reporting: unknown (%v)", err)
		return g
	}
	g.was, err = strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		g.state = fmt.Sprintf("free page reporting: unknown (%s holds %q)", path, strings.TrimSpace(string(raw)))
		return g
	}
	if !hold || g.was >= reportingPausedOrder {
		g.state = fmt.Sprintf("free page reporting: on for the run (order %d)", g.was)
		if g.was >= reportingPausedOrder {
			g.state = fmt.Sprintf("free page reporting: off before the run (order %d)", g.was)
		}
		return g
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(reportingPausedOrder)), 0o644); err != nil {
		g.state = fmt.Sprintf("free page reporting: on for the run (order %d; pausing it failed: %v)", g.was, err)
		return g
	}
	g.held = true
	g.state = fmt.Sprintf("free page reporting: paused for the run (order %d -> %d, restored after)", g.was, reportingPausedOrder)
	return g
}

// release restores the reporting order found before the run.
func (g *guestMemory) release() error {
	if !g.held {
		return nil
	}
	g.held = false
	if err := os.WriteFile(g.path, []byte(strconv.Itoa(g.was)), 0o644); err != nil {
		return fmt.Errorf("restore %s to %d: %w", g.path, g.was, err)
	}
	return nil
}

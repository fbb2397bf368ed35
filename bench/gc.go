package bench

import (
	"os"
	"runtime/debug"
)

// LoadGeneratorGOGC is the garbage collector target a load-generating process runs with unless GOGC is set
// in its environment. With Go's default of 100 the collector ran so often on franz-go's short-lived
// request buffers (a produce request of a few MB is built by appending into a pooled slice, and every
// collection empties the pool, so the next request grows its buffer again from nothing) that it took
// about half of the load generator's CPU. Against one `strom serve` on two cores, 100 against 400:
// e2e at 263,000 1 KiB records/s needed 1.06 cores against 0.57, with p50 17-20 ms against 12 ms (one
// run at 100 fell behind: p50 141 ms); 4 franz-go producers wrote 3.05M against 3.78M 100-byte records/s,
// and 4 consumers read them at 5.7M against 8.9-9.6M records/s. The heap may grow to five times what is
// live (franz-go's buffered records: up to 32 MiB per producer).
const LoadGeneratorGOGC = 400

// TuneGC sets LoadGeneratorGOGC for this process unless its environment sets GOGC, and returns the
// percentage in effect: the process-wide setting of the commands that generate load (`strom bench`,
// the side-by-side runner), which both clusters under test meet alike.
func TuneGC() int {
	if v, ok := os.LookupEnv("GOGC"); ok && v != "" {
		old := debug.SetGCPercent(100)
		debug.SetGCPercent(old)
		return old
	}
	debug.SetGCPercent(LoadGeneratorGOGC)
	return LoadGeneratorGOGC
}

package bench

import (
	"runtime/debug"
	"testing"
)

func TestTuneGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))

	t.Setenv("GOGC", "")
	if got := TuneGC(); got != LoadGeneratorGOGC {
		t.Fatalf("TuneGC without GOGC = %d, want %d", got, LoadGeneratorGOGC)
	}
	if got := debug.SetGCPercent(LoadGeneratorGOGC); got != LoadGeneratorGOGC {
		t.Fatalf("GC percent after TuneGC = %d, want %d", got, LoadGeneratorGOGC)
	}

	// A GOGC from the environment is the runtime's own setting (read at start): TuneGC leaves it.
	debug.SetGCPercent(70)
	t.Setenv("GOGC", "70")
	if got := TuneGC(); got != 70 {
		t.Fatalf("TuneGC with GOGC=70 = %d, want 70", got)
	}
	if got := debug.SetGCPercent(70); got != 70 {
		t.Fatalf("GC percent after TuneGC with GOGC set = %d, want 70", got)
	}
}

package cputime

import "testing"

// TestProcessGrows checks that busy work shows up in the reading.
func TestProcessGrows(t *testing.T) {
	before := Process()
	x := 0
	for i := 0; i < 200_000_000; i++ {
		x += i & 7
	}
	if x == 0 {
		t.Fatal("loop did not run")
	}
	if after := Process(); after <= before {
		t.Fatalf("CPU time %v s after busy work, %v s before", after, before)
	}
}

//go:build invariants

package storage

import "fmt"

// invariantsEnabled is true in builds with the invariants tag (go test -tags invariants).
const invariantsEnabled = true

// checkInvariants panics when the Log's state breaks an invariant. Only compiled with the invariants
// tag, where a loud failure in tests is the point. Caller holds mu.
func (l *Log) checkInvariants() {
	ls, hw, leo := l.logStart.Load(), l.hw.Load(), l.leo.Load()
	if !(ls <= hw && hw <= leo) {
		panic(fmt.Sprintf("storage invariant: log start %d <= hw %d <= leo %d", ls, hw, leo))
	}
	if d := l.RecoveryPoint(); d > leo {
		panic(fmt.Sprintf("storage invariant: recovery point %d > leo %d", d, leo))
	}
	segs := *l.segs.Load()
	if len(segs) == 0 {
		panic("storage invariant: no segments")
	}
	if segs[0].base > ls || segs[len(segs)-1].base > leo {
		panic(fmt.Sprintf("storage invariant: segments [%d..%d] vs log start %d leo %d", segs[0].base, segs[len(segs)-1].base, ls, leo))
	}
	for i, s := range segs {
		if i > 0 && s.base <= segs[i-1].base {
			panic(fmt.Sprintf("storage invariant: segment %d after %d", s.base, segs[i-1].base))
		}
		if idx := s.idx.Load(); idx != nil {
			size := s.size.Load()
			for _, e := range idx.off {
				if int64(e.pos) >= size {
					panic(fmt.Sprintf("storage invariant: index position %d beyond size %d of %s", e.pos, size, s.logPath))
				}
			}
		}
	}
}

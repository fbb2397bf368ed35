//go:build invariants

package raft

import "fmt"

// assertInvariants panics on a State that breaks its invariants. Only built
// with -tags invariants (tests); a violation is a bug in apply, never bad
// input, since the FSM validates everything it reads.
func assertInvariants(s *State) {
	if err := s.checkInvariants(); err != nil {
		panic(fmt.Sprintf("raft: state invariant broken at version %d: %v", s.Version, err))
	}
}

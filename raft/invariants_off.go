//go:build !invariants

package raft

// assertInvariants is a no-op without the invariants build tag.
func assertInvariants(*State) {}

//go:build !invariants

package storage

// invariantsEnabled is true in builds with the invariants tag (go test -tags invariants).
const invariantsEnabled = false

// checkInvariants is a no-op without the invariants build tag.
func (l *Log) checkInvariants() {}

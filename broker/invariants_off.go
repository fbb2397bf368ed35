//go:build !invariants

package broker

// invariantsOn enables expensive consistency checks (go test -tags invariants).
const invariantsOn = false

//go:build !invariants

package group

// checkInvariants is a no-op unless built with -tags invariants.
func (g *Group) checkInvariants() {}

//go:build invariants

package group

import (
	"fmt"
	"slices"
)

// checkInvariants panics when the group's state contradicts the invariants
// written on its fields; built only with -tags invariants (tests).
func (g *Group) checkInvariants() {
	fail := func(format string, args ...any) {
		panic(fmt.Sprintf("group %s: invariant: "+format, append([]any{g.id}, args...)...))
	}
	if len(g.order) != len(g.members) {
		fail("%d ids in order, %d members", len(g.order), len(g.members))
	}
	for _, id := range g.order {
		if g.members[id] == nil {
			fail("order names %q, which is not a member", id)
		}
	}
	if g.leader != "" && g.members[g.leader] == nil {
		fail("leader %q is not a member", g.leader)
	}
	if g.leader == "" && len(g.members) > 0 {
		fail("members without a leader")
	}
	for inst, id := range g.static {
		m := g.members[id]
		if m == nil || m.instanceID == nil || *m.instanceID != inst {
			fail("static %q maps to %q, which does not hold it", inst, id)
		}
	}
	switch g.state {
	case Empty:
		if len(g.members) > 0 {
			fail("Empty with %d members", len(g.members))
		}
	case Stable, CompletingRebalance:
		for id, m := range g.members {
			if m.joinCB != nil {
				fail("%v with member %q waiting to join", g.state, id)
			}
		}
	}
	if cs := g.consumer; cs != nil {
		if len(g.members) > 0 {
			fail("consumer group with classic members")
		}
		for id, m := range cs.members {
			for tid, ps := range m.assigned {
				if !slices.IsSorted(ps) {
					fail("member %q partitions of %x unsorted", id, tid)
				}
				for _, p := range ps {
					if slices.Contains(m.revoking[tid], p) {
						fail("member %q both owns and revokes %x/%d", id, tid, p)
					}
					for oid, o := range cs.members {
						if oid != id && (slices.Contains(o.assigned[tid], p) || slices.Contains(o.revoking[tid], p)) {
							fail("%x/%d held by %q and %q", tid, p, id, oid)
						}
					}
				}
			}
		}
	}
}

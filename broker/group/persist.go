package group

// Durability of consumer-protocol groups: their state is written to
// __consumer_offsets as Kafka's records (records.go) and rebuilt from them
// when a coordinator loads its partition, so a restart keeps the group
// epoch, the members (until their sessions expire), their epochs, target
// and current assignments.
//
// The records are derived, not logged by each mutation: ConsumerRecords
// encodes the group's current image (one value per record key) and returns
// the difference to what was written last, upserts and tombstones. Every
// state change of the group happens under the coordinator shard's lock,
// which also appends these records before any answer of the change is
// released, so the log always holds the image the clients were told about.
// A heartbeat that changes only its member (the common case) encodes that
// member and the three group-level records; a new target, a membership
// change or a conversion encodes the whole group, linear in its members.

import (
	"bytes"
	"cmp"
	"maps"
	"slices"
	"time"
)

// ConsumerRecord is one __consumer_offsets record of a consumer group; a nil
// Value is a tombstone.
type ConsumerRecord struct {
	Key, Value []byte
}

// ConsumerRecords returns the records that bring the log from the image
// last written to the group's current one and remembers the current image
// as written. The caller must append them (in order) before it releases
// any answer of the change, and call ConsumerRecordsLost if the append
// failed. A Dead group returns nothing: it died because its coordinator
// moved or the broker stops, and its records must stay; deletion writes
// ConsumerTombstones instead. A group that went back to the classic
// protocol returns tombstones for everything it wrote as a consumer group.
func (g *Group) ConsumerRecords() []ConsumerRecord {
	g.undo = nil
	if g.state == Dead || (!g.imageStale && len(g.staleMembers) == 0) {
		return nil
	}
	var only map[string]bool
	if !g.imageStale {
		only = g.staleMembers
	}
	recs := g.diffPersisted(g.consumerImage(only), only)
	g.imageStale = false
	g.staleMembers = nil
	return recs
}

// ConsumerTombstones returns tombstones for every consumer-group record the
// group has written, for its deletion.
func (g *Group) ConsumerTombstones() []ConsumerRecord {
	g.undo = nil
	return g.diffPersisted(nil, nil)
}

// markStale notes that member id's own records may have changed.
func (g *Group) markStale(id string) {
	if g.staleMembers == nil {
		g.staleMembers = map[string]bool{}
	}
	g.staleMembers[id] = true
}

// consumerImage encodes the consumer state, one value per record key; nil
// for a classic group. With only set it encodes the group-level records
// and the records of the members only names.
func (g *Group) consumerImage(only map[string]bool) map[RecordKey][]byte {
	cs := g.consumer
	if cs == nil {
		return nil
	}
	img := map[RecordKey][]byte{}
	gk := func(t int16) RecordKey { return RecordKey{Type: t, Group: g.id} }
	mk := func(t int16, m string) RecordKey { return RecordKey{Type: t, Group: g.id, Member: m} }
	img[gk(RecordConsumerGroupMetadata)] = (&ConsumerGroupMetadataValue{Epoch: cs.epoch}).AppendTo(nil)
	img[gk(RecordConsumerGroupPartitionMetadata)] = (&ConsumerGroupPartitionMetadataValue{Topics: cs.metaTopics}).AppendTo(nil)
	img[gk(RecordConsumerGroupTargetMetadata)] = (&ConsumerGroupTargetMetadataValue{AssignmentEpoch: cs.assignEpoch}).AppendTo(nil)
	member := func(id string, m *cmember) {
		mv := ConsumerGroupMemberMetadataValue{
			InstanceID: m.instanceID, RackID: m.rackID, ClientID: m.clientID, ClientHost: m.clientHost,
			SubscribedTopics: m.subscribed, RebalanceTimeoutMs: int32(m.rebalanceTimeout / time.Millisecond),
		}
		if mv.SubscribedTopics == nil {
			mv.SubscribedTopics = []string{}
		}
		// Kafka writes an empty regex rather than null when there is none.
		mv.SubscribedRegex = &m.regex
		if m.assignor != "" {
			mv.ServerAssignor = &m.assignor
		}
		img[mk(RecordConsumerGroupMemberMetadata, id)] = mv.AppendTo(nil)
		cv := ConsumerGroupCurrentAssignmentValue{
			MemberEpoch: m.epoch, PreviousMemberEpoch: m.prevEpoch, State: int8(m.state),
			Assigned: m.assigned, AssignedAt: m.assignedAt, Revoking: m.revoking,
		}
		if cv.AssignedAt == nil {
			cv.AssignedAt = map[TopicID]map[int32]int32{}
		}
		img[mk(RecordConsumerGroupCurrentAssignment, id)] = cv.AppendTo(nil)
	}
	target := func(id string, a Assignment) {
		img[mk(RecordConsumerGroupTargetMember, id)] = (&ConsumerGroupTargetMemberValue{Assignment: a}).AppendTo(nil)
	}
	if only != nil {
		for id := range only {
			if m := cs.members[id]; m != nil {
				member(id, m)
			}
			if a, ok := cs.target[id]; ok {
				target(id, a)
			}
		}
		return img
	}
	for id, m := range cs.members {
		member(id, m)
	}
	for id, a := range cs.target {
		target(id, a)
	}
	return img
}

// persistUndo is one entry of persisted as it was before a diff replaced
// it; existed is false for a key the diff added.
type persistUndo struct {
	key     RecordKey
	value   []byte
	existed bool
}

// recordOrder ranks record types for writing, as Kafka orders them: a
// member's metadata before the group epoch it caused, the target before
// the current assignments that follow it; tombstones of a member before
// those of the group, the group metadata last.
func recordOrder(t int16, tombstone bool) int {
	if tombstone {
		switch t {
		case RecordConsumerGroupCurrentAssignment:
			return 0
		case RecordConsumerGroupTargetMember:
			return 1
		case RecordConsumerGroupMemberMetadata:
			return 2
		case RecordConsumerGroupTargetMetadata:
			return 10
		case RecordConsumerGroupPartitionMetadata:
			return 11
		default:
			return 12
		}
	}
	switch t {
	case RecordConsumerGroupMemberMetadata:
		return 3
	case RecordConsumerGroupMetadata:
		return 4
	case RecordConsumerGroupPartitionMetadata:
		return 5
	case RecordConsumerGroupTargetMember:
		return 6
	case RecordConsumerGroupTargetMetadata:
		return 7
	default:
		return 8
	}
}

// diffPersisted returns the records that turn the written image into want
// and makes want the written image. With only set, want holds the
// group-level records and those of the members only names, and nothing else
// is compared: a key of another member is neither rewritten nor tombstoned.
func (g *Group) diffPersisted(want map[RecordKey][]byte, only map[string]bool) []ConsumerRecord {
	type change struct {
		key   RecordKey
		value []byte
		tomb  bool
	}
	var changes []change
	for k, v := range want {
		if old, ok := g.persisted[k]; !ok || !bytes.Equal(old, v) {
			changes = append(changes, change{key: k, value: v})
		}
	}
	tombIfGone := func(k RecordKey) {
		if _, ok := want[k]; !ok {
			changes = append(changes, change{key: k, tomb: true})
		}
	}
	if only == nil {
		for k := range g.persisted {
			tombIfGone(k)
		}
	} else {
		for id := range only {
			for _, t := range []int16{RecordConsumerGroupMemberMetadata, RecordConsumerGroupTargetMember, RecordConsumerGroupCurrentAssignment} {
				if k := (RecordKey{Type: t, Group: g.id, Member: id}); g.persisted[k] != nil {
					tombIfGone(k)
				}
			}
		}
	}
	if len(changes) == 0 {
		return nil
	}
	slices.SortFunc(changes, func(a, b change) int {
		return cmp.Or(cmp.Compare(recordOrder(a.key.Type, a.tomb), recordOrder(b.key.Type, b.tomb)),
			cmp.Compare(a.key.Member, b.key.Member))
	})
	if g.persisted == nil {
		g.persisted = map[RecordKey][]byte{}
	}
	out := make([]ConsumerRecord, 0, len(changes))
	for _, c := range changes {
		out = append(out, ConsumerRecord{Key: c.key.AppendTo(nil), Value: c.value})
		old, existed := g.persisted[c.key]
		g.undo = append(g.undo, persistUndo{key: c.key, value: old, existed: existed})
		if c.tomb {
			delete(g.persisted, c.key)
		} else {
			g.persisted[c.key] = c.value
		}
	}
	return out
}

// ConsumerRecordsLost tells the group that the records of its last
// ConsumerRecords or ConsumerTombstones call were not written (the append
// failed): the written image goes back to what it was, and the next
// ConsumerRecords compares the whole group again, so it returns those
// changes again.
func (g *Group) ConsumerRecordsLost() {
	for i := len(g.undo) - 1; i >= 0; i-- {
		u := g.undo[i]
		if u.existed {
			g.persisted[u.key] = u.value
		} else {
			delete(g.persisted, u.key)
		}
	}
	g.undo = nil
	g.imageStale = true
}

// RestoreConsumer rebuilds a consumer group from its records as a
// coordinator load found them (values by key, tombstoned keys absent; undecodable
// values are dropped). It reports false, leaving g unchanged, when there is
// no group metadata record. Members get a fresh session (now +
// sessionTimeout) and keep their epochs and assignments, so they resume
// with their next heartbeat; one in the middle of a revocation gets a fresh
// rebalance timeout for it. The first heartbeat after the restore carries
// the member's assignment again.
func (g *Group) RestoreConsumer(recs map[RecordKey][]byte, now time.Time, sessionTimeout time.Duration) bool {
	defer g.checkInvariants()
	var meta ConsumerGroupMetadataValue
	metaRaw, ok := recs[RecordKey{Type: RecordConsumerGroupMetadata, Group: g.id}]
	if !ok || meta.ReadFrom(metaRaw) != nil || len(g.members) > 0 {
		return false
	}
	persisted := map[RecordKey][]byte{{Type: RecordConsumerGroupMetadata, Group: g.id}: metaRaw}
	cs := &consumerState{epoch: meta.Epoch, members: map[string]*cmember{}, static: map[string]string{}, target: map[string]Assignment{}}
	var pm ConsumerGroupPartitionMetadataValue
	if k := (RecordKey{Type: RecordConsumerGroupPartitionMetadata, Group: g.id}); pm.ReadFrom(recs[k]) == nil {
		persisted[k] = recs[k]
		cs.metaTopics = pm.Topics
		slices.SortFunc(cs.metaTopics, func(a, b TopicInfo) int { return cmp.Compare(a.Name, b.Name) })
		cs.metaSig = topicsSignature(cs.metaTopics)
	}
	var tm ConsumerGroupTargetMetadataValue
	if k := (RecordKey{Type: RecordConsumerGroupTargetMetadata, Group: g.id}); tm.ReadFrom(recs[k]) == nil {
		persisted[k] = recs[k]
		cs.assignEpoch = tm.AssignmentEpoch
	}
	keys := slices.SortedFunc(maps.Keys(recs), func(a, b RecordKey) int { return cmp.Compare(a.Member, b.Member) })
	for _, k := range keys {
		if k.Group != g.id || k.Type != RecordConsumerGroupMemberMetadata || k.Member == "" {
			continue
		}
		var mv ConsumerGroupMemberMetadataValue
		if mv.ReadFrom(recs[k]) != nil {
			continue
		}
		persisted[k] = recs[k]
		m := &cmember{
			id: k.Member, instanceID: mv.InstanceID, rackID: mv.RackID, clientID: mv.ClientID,
			clientHost: mv.ClientHost, rebalanceTimeout: time.Duration(mv.RebalanceTimeoutMs) * time.Millisecond,
			assigned: Assignment{}, revoking: Assignment{}, assignedAt: map[TopicID]map[int32]int32{},
			deadline: now.Add(sessionTimeout),
		}
		m.subscribed = slices.Compact(slices.Sorted(slices.Values(mv.SubscribedTopics)))
		if mv.SubscribedRegex != nil {
			m.regex = *mv.SubscribedRegex
		}
		if mv.ServerAssignor != nil {
			m.assignor = *mv.ServerAssignor
		}
		if m.instanceID != nil {
			if _, dup := cs.static[*m.instanceID]; dup {
				m.instanceID = nil // two members claim one instance id: keep the first
			} else {
				cs.static[*m.instanceID] = m.id
			}
		}
		ck := RecordKey{Type: RecordConsumerGroupCurrentAssignment, Group: g.id, Member: k.Member}
		var cv ConsumerGroupCurrentAssignmentValue
		if raw, ok := recs[ck]; ok && cv.ReadFrom(raw) == nil {
			persisted[ck] = raw
			m.epoch, m.prevEpoch = cv.MemberEpoch, cv.PreviousMemberEpoch
			if cv.State >= int8(memberStable) && cv.State <= int8(memberUnreleased) {
				m.state = memberState(cv.State)
			}
			// Keep the one-owner invariant even over inconsistent records:
			// a partition another member already holds is dropped.
			for tid, ps := range cv.Assigned {
				for _, p := range ps {
					if !g.heldBy(cs, tid, p) {
						addPartition(m.assigned, tid, p)
						e, ok := cv.AssignedAt[tid][p]
						if !ok {
							e = m.epoch
						}
						if m.assignedAt[tid] == nil {
							m.assignedAt[tid] = map[int32]int32{}
						}
						m.assignedAt[tid][p] = e
					}
				}
			}
			for tid, ps := range cv.Revoking {
				for _, p := range ps {
					if !g.heldBy(cs, tid, p) && !slices.Contains(m.assigned[tid], p) {
						addPartition(m.revoking, tid, p)
					}
				}
			}
			if m.state == memberUnrevoked {
				m.revokeDeadline = now.Add(m.rebalanceTimeout)
			}
		}
		cs.members[m.id] = m
	}
	for _, k := range keys {
		if k.Group != g.id || k.Type != RecordConsumerGroupTargetMember || cs.members[k.Member] == nil {
			continue
		}
		var tv ConsumerGroupTargetMemberValue
		if tv.ReadFrom(recs[k]) == nil {
			persisted[k] = recs[k]
			cs.target[k.Member] = tv.Assignment
		}
	}
	// Records of the group that the rebuilt state does not use (a target or
	// assignment of a member without metadata, a value that did not decode)
	// count as written, so the next full comparison tombstones them.
	for k, v := range recs {
		if _, used := persisted[k]; !used && k.Group == g.id {
			persisted[k] = v
		}
	}
	g.consumer = cs
	cs.assignor = g.chooseAssignor()
	g.protocolType = "consumer"
	g.protocol = ""
	g.persisted = persisted
	g.transition(Empty, now)
	g.syncConsumerState(now)
	return true
}

// heldBy reports whether a member of cs already holds or revokes tid/p.
func (g *Group) heldBy(cs *consumerState, tid TopicID, p int32) bool {
	for _, m := range cs.members {
		if slices.Contains(m.assigned[tid], p) || slices.Contains(m.revoking[tid], p) {
			return true
		}
	}
	return false
}

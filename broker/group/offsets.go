package group

import (
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TopicPartition names one partition of a topic.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Offset is one committed offset, as stored in an OffsetCommitValue.
type Offset struct {
	Offset      int64
	LeaderEpoch int32
	Metadata    string
	// CommitTime and ExpireTime are Unix milliseconds; ExpireTime is -1
	// unless the commit asked for its own retention (OffsetCommit v2-v4).
	CommitTime int64
	ExpireTime int64
	// TopicID is the id of the topic the offset was committed to (for an
	// offset read back from the log: of the topic of that name then). It is
	// kept in memory only, as Kafka's offset records carry no id; it tells
	// a topic deleted and created again under the same name from the one
	// the offset belongs to. Zero when unknown.
	TopicID [16]byte
}

// MemberInfo describes one member for DescribeGroups.
type MemberInfo struct {
	MemberID   string
	InstanceID *string
	ClientID   string
	ClientHost string
	// Metadata and Assignment are set only while the group is Stable, as
	// Kafka describes them.
	Metadata   []byte
	Assignment []byte
}

// Describe returns what DescribeGroups reports: the protocol is "" and
// member metadata is left out unless the group is Stable.
func (g *Group) Describe() (protocol string, members []MemberInfo) {
	if cs := g.consumer; cs != nil {
		for _, id := range slices.Sorted(maps.Keys(cs.members)) {
			m := cs.members[id]
			members = append(members, MemberInfo{MemberID: id, InstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.clientHost})
		}
		return "", members
	}
	stable := g.state == Stable
	if stable {
		protocol = g.protocol
	}
	for _, id := range g.order {
		m := g.members[id]
		mi := MemberInfo{MemberID: id, InstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.clientHost}
		if stable {
			mi.Metadata = m.metadataFor(g.protocol)
			mi.Assignment = m.assignment
		}
		members = append(members, mi)
	}
	return protocol, members
}

// ValidateCommit is Kafka's ClassicGroup.validateOffsetCommit: an empty
// group takes commits from anyone with generation < 0 (simple consumers,
// admin tools); otherwise the member and generation must be current, and a
// group between join and sync answers REBALANCE_IN_PROGRESS.
func (g *Group) ValidateCommit(memberID string, instanceID *string, generation int32) *kerr.Error {
	if g.state == Dead {
		return kerr.CoordinatorNotAvailable
	}
	if g.consumer != nil {
		return g.validateConsumerCommit(memberID, generation)
	}
	if generation < 0 && g.state == Empty {
		return nil
	}
	if generation >= 0 || memberID != "" || instanceID != nil {
		if _, e := g.validateMember(memberID, instanceID); e != nil {
			return e
		}
		if generation != g.generation {
			return kerr.IllegalGeneration
		}
	} else if g.state != Empty {
		return kerr.UnknownMemberID
	}
	if g.state == CompletingRebalance {
		return kerr.RebalanceInProgress
	}
	return nil
}

// ValidateFetch checks the member of an OffsetFetch v9+ that names one; a
// classic group accepts any (Kafka validates only consumer groups).
func (g *Group) ValidateFetch() *kerr.Error {
	if g.state == Dead {
		return kerr.CoordinatorNotAvailable
	}
	return nil
}

// Touch records a successful heartbeat-like activity of a member (an
// offset commit also proves liveness in Kafka); nothing else changes.
func (g *Group) Touch(now time.Time, memberID string) {
	if m := g.members[memberID]; m != nil && m.joinCB == nil && m.syncCB == nil {
		m.deadline = now.Add(m.sessionTimeout)
	}
}

// Commit stores one offset.
func (g *Group) Commit(tp TopicPartition, o Offset) { g.offsets[tp] = o }

// DeleteOffset removes one offset (a tombstone was written or replayed).
func (g *Group) DeleteOffset(tp TopicPartition) { delete(g.offsets, tp) }

// OffsetOf returns the committed offset of tp.
func (g *Group) OffsetOf(tp TopicPartition) (Offset, bool) {
	o, ok := g.offsets[tp]
	return o, ok
}

// Offsets returns every committed partition, sorted by topic and partition.
func (g *Group) Offsets() []TopicPartition {
	out := make([]TopicPartition, 0, len(g.offsets))
	for tp := range g.offsets {
		out = append(out, tp)
	}
	slices.SortFunc(out, func(a, b TopicPartition) int {
		if a.Topic != b.Topic {
			if a.Topic < b.Topic {
				return -1
			}
			return 1
		}
		return int(a.Partition - b.Partition)
	})
	return out
}

// Removable reports whether the group holds nothing worth keeping: Empty,
// no member ids handed out and waiting, no offsets. The coordinator then
// deletes it (Kafka's cleanupGroupMetadata).
func (g *Group) Removable() bool {
	return g.state == Empty && len(g.pending) == 0 && len(g.offsets) == 0 &&
		(g.consumer == nil || len(g.consumer.members) == 0)
}

// NumOffsets returns the number of committed partitions.
func (g *Group) NumOffsets() int { return len(g.offsets) }

// Subscribed reports whether topic is consumed by a member of a Stable
// consumer group; OffsetDelete refuses such offsets
// (GROUP_SUBSCRIBED_TO_TOPIC).
func (g *Group) Subscribed(topic string) bool {
	return g.protocolType == "consumer" && g.state != Empty && subscriptionHas(g, topic)
}

// subscriptionHas looks for topic in the members' consumer-protocol
// subscriptions (version, then an array of topic strings).
func subscriptionHas(g *Group, topic string) bool {
	if cs := g.consumer; cs != nil {
		for _, m := range cs.members {
			if slices.Contains(m.subscribed, topic) {
				return true
			}
		}
		return false
	}
	for _, m := range g.members {
		for _, t := range consumerTopics(m.metadataFor(g.protocol)) {
			if t == topic {
				return true
			}
		}
	}
	return false
}

// consumerTopics decodes the topic list of a ConsumerProtocolSubscription;
// malformed input yields what was decoded so far.
func consumerTopics(b []byte) []string {
	if len(b) < 6 {
		return nil
	}
	b = b[2:]
	n := int32(uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]))
	b = b[4:]
	var out []string
	for i := int32(0); i < n && len(b) >= 2; i++ {
		l := int(int16(uint16(b[0])<<8 | uint16(b[1])))
		b = b[2:]
		if l < 0 || l > len(b) {
			break
		}
		out = append(out, string(b[:l]))
		b = b[l:]
	}
	return out
}

// Expire returns the offsets due for removal at now under retention
// (offsets.retention.minutes), with KIP-211 semantics: a group using group
// management keeps its offsets while it has members and loses them
// retention after it became Empty (Kafka's currentStateTimestamp); a group that only commits (no protocol
// type) loses each offset retention after its commit. An explicit
// ExpireTime wins.
func (g *Group) Expire(now time.Time, retention time.Duration) []TopicPartition {
	nowMS := now.UnixMilli()
	var out []TopicPartition
	for _, tp := range g.Offsets() {
		o := g.offsets[tp]
		switch {
		case o.ExpireTime >= 0:
			if nowMS >= o.ExpireTime {
				out = append(out, tp)
			}
		case g.protocolType == "":
			if nowMS >= o.CommitTime+retention.Milliseconds() {
				out = append(out, tp)
			}
		case g.state == Empty:
			if nowMS >= g.stateTime.UnixMilli()+retention.Milliseconds() {
				out = append(out, tp)
			}
		}
	}
	return out
}

package group

// The consumer group protocol of KIP-848 (ConsumerGroupHeartbeat): the
// coordinator assigns partitions itself and members reconcile towards their
// target assignment incrementally. A partition moves to a new owner only
// after its previous owner reported it revoked, so no two members consume it
// at once. This follows Kafka's GroupMetadataManager and
// CurrentAssignmentBuilder in simplified form:
//
//   - The group epoch rises whenever membership, subscriptions or the
//     metadata of subscribed topics change; the target assignment is then
//     recomputed by the server-side assignor ("uniform" or "range") and its
//     epoch (the assignment epoch) set to the group epoch.
//   - A member whose epoch is behind the assignment epoch first revokes what
//     it owns outside its target (state unrevoked, epoch unchanged); once it
//     reports them gone it moves to the assignment epoch and receives the
//     target partitions no other member still holds (state unreleased until
//     all of them are free, then stable).
//   - A member that does not heartbeat within the session timeout, or does
//     not revoke within its rebalance timeout, is removed.

import (
	"maps"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Member epochs with special meaning in ConsumerGroupHeartbeat.
const (
	// JoinEpoch (0) joins or rejoins the group.
	JoinEpoch int32 = 0
	// LeaveEpoch (-1) leaves the group.
	LeaveEpoch int32 = -1
	// StaticLeaveEpoch (-2) leaves temporarily: a static member keeps its
	// assignment until its session times out or it comes back.
	StaticLeaveEpoch int32 = -2
)

// Server-side assignors.
const (
	AssignorUniform = "uniform"
	AssignorRange   = "range"
)

// TopicID is a topic's 16-byte id.
type TopicID = [16]byte

// Assignment maps topic ids to sorted partition lists.
type Assignment map[TopicID][]int32

// TopicInfo is what the assignor needs to know about a topic.
type TopicInfo struct {
	Name       string
	ID         TopicID
	Partitions int32
}

// Topics is the cluster metadata the consumer protocol reads: lookup by
// name, and every topic name (for regex subscriptions).
type Topics interface {
	Lookup(name string) (TopicInfo, bool)
	Names() []string
}

// ConsumerHeartbeat is a ConsumerGroupHeartbeat request. Nil slices and
// pointers mean "unchanged since the last heartbeat".
type ConsumerHeartbeat struct {
	MemberID         string
	MemberEpoch      int32
	InstanceID       *string
	RackID           *string
	ClientID         string
	ClientHost       string
	RebalanceTimeout time.Duration // negative: unchanged
	SubscribedTopics []string
	SubscribedRegex  *string
	ServerAssignor   *string
	// Owned is the partitions the member owns now; nil when unchanged.
	Owned Assignment
}

// ConsumerHeartbeatResult is the answer. Assignment is nil when it did not
// change since the member last heard it.
type ConsumerHeartbeatResult struct {
	Err        *kerr.Error
	ErrMessage string
	MemberID   string
	Epoch      int32
	Assignment Assignment
}

// ConsumerConfig holds the KIP-848 coordinator settings.
type ConsumerConfig struct {
	// SessionTimeout is group.consumer.session.timeout.ms.
	SessionTimeout time.Duration
	// HeartbeatInterval is group.consumer.heartbeat.interval.ms.
	HeartbeatInterval time.Duration
}

type memberState int8

const (
	memberStable memberState = iota
	memberUnrevoked
	memberUnreleased
)

// cmember is one member of a consumer group.
type cmember struct {
	id               string
	instanceID       *string
	rackID           *string
	clientID         string
	clientHost       string
	epoch, prevEpoch int32
	state            memberState
	subscribed       []string
	regex            string
	assignor         string
	rebalanceTimeout time.Duration
	// assigned is what the member may consume; revoking what it must give
	// up before it moves on. Invariant: disjoint.
	assigned, revoking Assignment
	// assignedAt is the member epoch at which each assigned partition was
	// given to the member; commits from an older epoch are accepted for a
	// partition the member has held since then (as Kafka 4.3 does).
	assignedAt     map[TopicID]map[int32]int32
	deadline       time.Time
	revokeDeadline time.Time
	// sent is the signature of the assignment last sent to the member.
	sent string
}

// consumerState is the consumer-protocol part of a Group.
type consumerState struct {
	epoch       int32
	assignEpoch int32
	members     map[string]*cmember
	static      map[string]string
	target      map[string]Assignment
	assignor    string
	// metaSig fingerprints the metadata of subscribed topics; a change
	// bumps the group epoch. metaTopics is that metadata (sorted by name),
	// persisted as the partition metadata record.
	// Invariant: metaSig == topicsSignature(metaTopics).
	metaSig    string
	metaTopics []TopicInfo
}

// IsConsumer reports whether the group uses the consumer protocol
// (KIP-848) rather than the classic one.
func (g *Group) IsConsumer() bool { return g.consumer != nil }

// Type is the group type as ListGroups reports it.
func (g *Group) Type() string {
	if g.consumer != nil {
		return "consumer"
	}
	return "classic"
}

// StateName is the state as ListGroups and DescribeGroups report it.
func (g *Group) StateName() string {
	cs := g.consumer
	if cs == nil || g.state == Dead {
		return g.state.String()
	}
	switch {
	case len(cs.members) == 0:
		return "Empty"
	case cs.assignEpoch < cs.epoch:
		return "Assigning"
	}
	for _, m := range cs.members {
		if m.epoch != cs.assignEpoch || m.state != memberStable {
			return "Reconciling"
		}
	}
	return "Stable"
}

// toConsumer turns an empty classic group into a consumer group; offsets
// stay. It reports false when the group has classic members.
func (g *Group) toConsumer(now time.Time) bool {
	if g.consumer != nil {
		return true
	}
	if len(g.members) > 0 || len(g.pending) > 0 || g.state == Dead {
		return false
	}
	g.consumer = &consumerState{members: map[string]*cmember{}, static: map[string]string{}, target: map[string]Assignment{}}
	g.imageStale = true
	g.protocolType = "consumer"
	g.protocol = ""
	g.transition(Empty, now)
	return true
}

// toClassic turns an empty consumer group back into a classic one.
func (g *Group) toClassic() bool {
	if g.consumer == nil {
		return true
	}
	if len(g.consumer.members) > 0 {
		return false
	}
	g.consumer = nil
	g.imageStale = true
	return true
}

func (g *Group) syncConsumerState(now time.Time) {
	if len(g.consumer.members) == 0 {
		if g.state != Empty {
			g.transition(Empty, now)
		}
	} else if g.state != Stable {
		g.transition(Stable, now)
	}
}

// ConsumerHeartbeat handles a ConsumerGroupHeartbeat. requireMemberID is set for
// v1+ (the client generates its member id, KIP-1082).
func (g *Group) ConsumerHeartbeat(now time.Time, cfg ConsumerConfig, topics Topics, req ConsumerHeartbeat, requireMemberID bool) ConsumerHeartbeatResult {
	defer g.checkInvariants()
	fail := func(e *kerr.Error, msg string) ConsumerHeartbeatResult {
		return ConsumerHeartbeatResult{Err: e, ErrMessage: msg, MemberID: req.MemberID, Epoch: -1}
	}
	if g.state == Dead {
		return fail(kerr.CoordinatorNotAvailable, "")
	}
	if !g.toConsumer(now) {
		return fail(kerr.GroupIDNotFound, "Group "+g.id+" is not a consumer group.")
	}
	if requireMemberID && req.MemberID == "" {
		return fail(kerr.InvalidRequest, "MemberId can't be empty.")
	}
	if req.ServerAssignor != nil && *req.ServerAssignor != AssignorUniform && *req.ServerAssignor != AssignorRange {
		return fail(kerr.UnsupportedAssignor, "ServerAssignor "+*req.ServerAssignor+" is not supported. Supported assignors: uniform, range.")
	}
	if req.SubscribedRegex != nil {
		if _, err := regexp.Compile(*req.SubscribedRegex); err != nil {
			return fail(kerr.InvalidRegularExpression, err.Error())
		}
	}
	cs := g.consumer
	switch req.MemberEpoch {
	case LeaveEpoch, StaticLeaveEpoch:
		m := cs.members[req.MemberID]
		if m == nil && req.InstanceID != nil {
			m = cs.members[cs.static[*req.InstanceID]]
		}
		if m == nil {
			return fail(kerr.UnknownMemberID, "")
		}
		if req.MemberEpoch == StaticLeaveEpoch && m.instanceID != nil {
			g.markStale(m.id)
			m.epoch = StaticLeaveEpoch
			return ConsumerHeartbeatResult{MemberID: m.id, Epoch: StaticLeaveEpoch}
		}
		g.removeConsumerMember(now, m.id)
		return ConsumerHeartbeatResult{MemberID: m.id, Epoch: req.MemberEpoch}
	}

	m := cs.members[req.MemberID]
	changed := false
	if req.MemberEpoch == JoinEpoch {
		if req.SubscribedTopics == nil && req.SubscribedRegex == nil {
			return fail(kerr.InvalidRequest, "SubscribedTopicNames or SubscribedTopicRegex must be set in the first request.")
		}
		if req.RebalanceTimeout < 0 {
			return fail(kerr.InvalidRequest, "RebalanceTimeoutMs must be provided in the first request.")
		}
		if req.MemberID == "" {
			req.MemberID = g.newMemberID(req.ClientID)
			m = nil
		}
		if req.InstanceID != nil {
			if holder, ok := cs.static[*req.InstanceID]; ok && holder != req.MemberID {
				old := cs.members[holder]
				if old != nil && old.epoch != StaticLeaveEpoch {
					return fail(kerr.UnreleasedInstanceID, "Static member "+*req.InstanceID+" is still active.")
				}
				if old != nil {
					// The instance comes back under a new member id and takes
					// over its assignment and epoch.
					delete(cs.members, holder)
					old.id = req.MemberID
					old.epoch = old.prevEpoch
					cs.members[old.id] = old
					if t, ok := cs.target[holder]; ok {
						delete(cs.target, holder)
						cs.target[old.id] = t
					}
					cs.static[*req.InstanceID] = old.id
					g.imageStale = true // the member's records move to its new id
					m = old
					m.sent = ""
				}
			}
		}
		if m == nil {
			g.imageStale = true
			m = &cmember{id: req.MemberID, assigned: Assignment{}, revoking: Assignment{}}
			cs.members[m.id] = m
			if req.InstanceID != nil {
				m.instanceID = req.InstanceID
				cs.static[*req.InstanceID] = m.id
			}
			changed = true
			g.syncConsumerState(now)
		}
		m.sent = "" // a joining member always gets its assignment
	} else {
		if m == nil {
			return fail(kerr.UnknownMemberID, "")
		}
		if req.MemberEpoch != m.epoch {
			lostAnswer := req.MemberEpoch == m.prevEpoch && req.Owned != nil && contains(m.assigned, req.Owned)
			if !lostAnswer {
				return fail(kerr.FencedMemberEpoch, "The consumer group member has a smaller member epoch than expected.")
			}
			m.sent = ""
		}
	}
	m.deadline = now.Add(cfg.SessionTimeout)
	m.clientID, m.clientHost = req.ClientID, req.ClientHost
	if req.RackID != nil {
		m.rackID = req.RackID
	}
	if req.RebalanceTimeout >= 0 {
		m.rebalanceTimeout = req.RebalanceTimeout
	}
	if req.SubscribedTopics != nil {
		s := slices.Clone(req.SubscribedTopics)
		slices.Sort(s)
		s = slices.Compact(s)
		if !slices.Equal(s, m.subscribed) {
			m.subscribed = s
			changed = true
		}
	}
	if req.SubscribedRegex != nil && *req.SubscribedRegex != m.regex {
		m.regex = *req.SubscribedRegex
		changed = true
	}
	if req.ServerAssignor != nil && *req.ServerAssignor != m.assignor {
		m.assignor = *req.ServerAssignor
		changed = true
	}
	if sig, ts := g.subscriptionSignature(topics); sig != cs.metaSig {
		cs.metaSig, cs.metaTopics = sig, ts
		changed = true
	}
	if changed {
		cs.epoch++
	}
	if cs.assignEpoch < cs.epoch {
		g.computeTarget(topics)
	}
	g.reconcile(now, m, req.Owned)
	// Only m's records (and the group's own) can have changed unless the
	// target was recomputed or membership changed, which mark the whole
	// image stale.
	g.markStale(m.id)
	res := ConsumerHeartbeatResult{MemberID: m.id, Epoch: m.epoch}
	if sig := m.signature(); sig != m.sent {
		m.sent = sig
		res.Assignment = cloneAssignment(m.assigned)
	}
	return res
}

// signature identifies the member's epoch and assigned partitions.
func (m *cmember) signature() string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(int(m.epoch)))
	for _, id := range sortedIDs(m.assigned) {
		b.WriteByte('|')
		b.Write(id[:])
		for _, p := range m.assigned[id] {
			b.WriteByte(',')
			b.WriteString(strconv.Itoa(int(p)))
		}
	}
	return b.String()
}

func sortedIDs(a Assignment) []TopicID {
	ids := slices.Collect(maps.Keys(a))
	slices.SortFunc(ids, func(x, y TopicID) int { return strings.Compare(string(x[:]), string(y[:])) })
	return ids
}

func cloneAssignment(a Assignment) Assignment {
	out := make(Assignment, len(a))
	for id, ps := range a {
		if len(ps) > 0 {
			out[id] = slices.Clone(ps)
		}
	}
	return out
}

// contains reports whether every partition of sub is in a.
func contains(a, sub Assignment) bool {
	for id, ps := range sub {
		for _, p := range ps {
			if !slices.Contains(a[id], p) {
				return false
			}
		}
	}
	return true
}

func intersects(a, b Assignment) bool {
	for id, ps := range b {
		for _, p := range ps {
			if slices.Contains(a[id], p) {
				return true
			}
		}
	}
	return false
}

func addPartition(a Assignment, id TopicID, p int32) {
	ps := a[id]
	i, found := slices.BinarySearch(ps, p)
	if !found {
		a[id] = slices.Insert(ps, i, p)
	}
}

// subscribedTopics resolves the topics a member subscribes to, by name and
// regex, sorted by name.
func subscribedTopics(m *cmember, topics Topics) []TopicInfo {
	seen := map[string]bool{}
	var out []TopicInfo
	for _, n := range m.subscribed {
		if t, ok := topics.Lookup(n); ok && !seen[n] {
			seen[n] = true
			out = append(out, t)
		}
	}
	if m.regex != "" {
		if re, err := regexp.Compile(m.regex); err == nil {
			for _, n := range topics.Names() {
				if !seen[n] && re.MatchString(n) {
					if t, ok := topics.Lookup(n); ok {
						seen[n] = true
						out = append(out, t)
					}
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// subscriptionSignature fingerprints the metadata of every subscribed
// topic (name, id, partition count) and returns those topics sorted by name.
func (g *Group) subscriptionSignature(topics Topics) (string, []TopicInfo) {
	all := map[string]TopicInfo{}
	for _, m := range g.consumer.members {
		for _, t := range subscribedTopics(m, topics) {
			all[t.Name] = t
		}
	}
	ts := make([]TopicInfo, 0, len(all))
	for _, n := range slices.Sorted(maps.Keys(all)) {
		ts = append(ts, all[n])
	}
	return topicsSignature(ts), ts
}

// topicsSignature fingerprints topic metadata sorted by name.
func topicsSignature(ts []TopicInfo) string {
	var b strings.Builder
	for _, t := range ts {
		b.WriteString(t.Name)
		b.Write(t.ID[:])
		b.WriteString(strconv.Itoa(int(t.Partitions)))
		b.WriteByte(';')
	}
	return b.String()
}

// chooseAssignor picks the server assignor the members ask for most; ties
// and no preference give uniform, Kafka's default.
func (g *Group) chooseAssignor() string {
	votes := map[string]int{}
	for _, m := range g.consumer.members {
		if m.assignor != "" {
			votes[m.assignor]++
		}
	}
	if votes[AssignorRange] > votes[AssignorUniform] {
		return AssignorRange
	}
	return AssignorUniform
}

// computeTarget recomputes the target assignment at the group epoch.
func (g *Group) computeTarget(topics Topics) {
	cs := g.consumer
	cs.assignor = g.chooseAssignor()
	ids := slices.Sorted(maps.Keys(cs.members))
	subs := map[string][]TopicInfo{}
	for _, id := range ids {
		subs[id] = subscribedTopics(cs.members[id], topics)
	}
	var target map[string]Assignment
	if cs.assignor == AssignorRange {
		target = assignRange(ids, subs)
	} else {
		target = assignUniform(ids, subs, cs.target)
	}
	cs.target = target
	cs.assignEpoch = cs.epoch
	g.imageStale = true
}

// assignRange gives each topic's partitions to its subscribers (sorted by
// member id) in contiguous ranges, the first ones one larger.
func assignRange(ids []string, subs map[string][]TopicInfo) map[string]Assignment {
	out := map[string]Assignment{}
	for _, id := range ids {
		out[id] = Assignment{}
	}
	byTopic := map[TopicID][]string{}
	infos := map[TopicID]TopicInfo{}
	for _, id := range ids {
		for _, t := range subs[id] {
			byTopic[t.ID] = append(byTopic[t.ID], id)
			infos[t.ID] = t
		}
	}
	for tid, ms := range byTopic {
		n := int(infos[tid].Partitions)
		per, extra := n/len(ms), n%len(ms)
		p := 0
		for i, id := range ms {
			cnt := per
			if i < extra {
				cnt++
			}
			for range cnt {
				addPartition(out[id], tid, int32(p))
				p++
			}
		}
	}
	return out
}

// assignUniform spreads all subscribed partitions evenly, keeping each
// partition with its previous target owner while that owner is under its
// quota (sticky), then giving the rest to the least loaded subscriber.
func assignUniform(ids []string, subs map[string][]TopicInfo, prev map[string]Assignment) map[string]Assignment {
	out := map[string]Assignment{}
	count := map[string]int{}
	subscribers := map[TopicID][]string{}
	var all []TopicInfo
	for _, id := range ids {
		out[id] = Assignment{}
		for _, t := range subs[id] {
			if len(subscribers[t.ID]) == 0 {
				all = append(all, t)
			}
			subscribers[t.ID] = append(subscribers[t.ID], id)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	total, active := 0, 0
	for _, t := range all {
		total += int(t.Partitions)
	}
	for _, id := range ids {
		if len(subs[id]) > 0 {
			active++
		}
	}
	if active == 0 {
		return out
	}
	// Balanced means every member holds minQuota or minQuota+1, the latter
	// for at most extra members.
	minQuota, extra := total/active, total%active
	prevOwner := map[TopicID]map[int32]string{}
	for id, a := range prev {
		for tid, ps := range a {
			if prevOwner[tid] == nil {
				prevOwner[tid] = map[int32]string{}
			}
			for _, p := range ps {
				prevOwner[tid][p] = id
			}
		}
	}
	type tp struct {
		id TopicID
		p  int32
	}
	keeper := func(t TopicInfo, p int32) (string, bool) {
		owner, ok := prevOwner[t.ID][p]
		return owner, ok && slices.Contains(subscribers[t.ID], owner)
	}
	var second, rest []tp
	for _, t := range all {
		for p := int32(0); p < t.Partitions; p++ {
			if owner, ok := keeper(t, p); ok && count[owner] < minQuota {
				addPartition(out[owner], t.ID, p)
				count[owner]++
				continue
			}
			second = append(second, tp{t.ID, p})
		}
	}
	for _, x := range second {
		owner, ok := prevOwner[x.id][x.p]
		if ok && slices.Contains(subscribers[x.id], owner) && count[owner] == minQuota && extra > 0 {
			addPartition(out[owner], x.id, x.p)
			count[owner]++
			extra--
			continue
		}
		rest = append(rest, x)
	}
	for _, x := range rest {
		best := ""
		for _, id := range subscribers[x.id] {
			if best == "" || count[id] < count[best] || (count[id] == count[best] && id < best) {
				best = id
			}
		}
		addPartition(out[best], x.id, x.p)
		count[best]++
	}
	return out
}

// ownedByOthers reports whether another member holds (or is still
// revoking) tid/p.
func (g *Group) ownedByOthers(self string, tid TopicID, p int32) bool {
	for id, m := range g.consumer.members {
		if id == self {
			continue
		}
		if slices.Contains(m.assigned[tid], p) || slices.Contains(m.revoking[tid], p) {
			return true
		}
	}
	return false
}

// reconcile moves m towards its target assignment (Kafka's
// CurrentAssignmentBuilder). owned is what the member reported owning, nil
// when it did not say.
func (g *Group) reconcile(now time.Time, m *cmember, owned Assignment) {
	cs := g.consumer
	if m.state == memberUnrevoked {
		if owned == nil || intersects(owned, m.revoking) {
			return // still waiting for the member to give them up
		}
		m.revoking = Assignment{}
		m.revokeDeadline = time.Time{}
	}
	if m.epoch == cs.assignEpoch && m.state == memberStable {
		return
	}
	target := cs.target[m.id]
	keep, revoke := Assignment{}, Assignment{}
	for tid, ps := range m.assigned {
		for _, p := range ps {
			if slices.Contains(target[tid], p) {
				addPartition(keep, tid, p)
			} else {
				addPartition(revoke, tid, p)
			}
		}
	}
	if len(revoke) > 0 {
		m.assigned, m.revoking = keep, revoke
		m.state = memberUnrevoked
		m.revokeDeadline = now.Add(m.rebalanceTimeout)
		return
	}
	next := keep
	complete := true
	for tid, ps := range target {
		for _, p := range ps {
			if slices.Contains(next[tid], p) {
				continue
			}
			if g.ownedByOthers(m.id, tid, p) {
				complete = false
				continue
			}
			addPartition(next, tid, p)
		}
	}
	if m.epoch != cs.assignEpoch {
		m.prevEpoch = m.epoch
		m.epoch = cs.assignEpoch
	}
	at := map[TopicID]map[int32]int32{}
	for tid, ps := range next {
		at[tid] = map[int32]int32{}
		for _, p := range ps {
			e, ok := m.assignedAt[tid][p]
			if !ok || !slices.Contains(m.assigned[tid], p) {
				e = m.epoch
			}
			at[tid][p] = e
		}
	}
	m.assignedAt = at
	m.assigned = next
	if complete {
		m.state = memberStable
	} else {
		m.state = memberUnreleased
	}
}

// removeConsumerMember drops a member; its partitions become free and the
// group epoch rises.
func (g *Group) removeConsumerMember(now time.Time, id string) {
	cs := g.consumer
	m := cs.members[id]
	if m == nil {
		return
	}
	g.imageStale = true
	delete(cs.members, id)
	delete(cs.target, id)
	if m.instanceID != nil && cs.static[*m.instanceID] == id {
		delete(cs.static, *m.instanceID)
	}
	cs.epoch++
	g.syncConsumerState(now)
}

// tickConsumer removes members past their session timeout or that did not
// revoke within their rebalance timeout.
func (g *Group) tickConsumer(now time.Time) {
	cs := g.consumer
	for _, id := range slices.Sorted(maps.Keys(cs.members)) {
		m := cs.members[id]
		expired := !now.Before(m.deadline)
		revokeLate := m.state == memberUnrevoked && !m.revokeDeadline.IsZero() && !now.Before(m.revokeDeadline)
		if expired || revokeLate {
			g.removeConsumerMember(now, id)
		}
	}
}

// validateConsumerCommit is Kafka's ConsumerGroup.validateOffsetCommit.
func (g *Group) validateConsumerCommit(memberID string, memberEpoch int32) *kerr.Error {
	cs := g.consumer
	if memberEpoch < 0 && len(cs.members) == 0 {
		return nil
	}
	m := cs.members[memberID]
	if m == nil {
		return kerr.UnknownMemberID
	}
	if memberEpoch != m.epoch {
		return kerr.StaleMemberEpoch
	}
	return nil
}

// CommitAllowed reports whether a consumer-group member may commit tid/p
// with an older member epoch: it must hold the partition since at most
// that epoch. Used when ValidateCommit answered STALE_MEMBER_EPOCH.
func (g *Group) CommitAllowed(memberID string, memberEpoch int32, tid TopicID, p int32) bool {
	if g.consumer == nil {
		return false
	}
	m := g.consumer.members[memberID]
	if m == nil || memberEpoch > m.epoch || !slices.Contains(m.assigned[tid], p) {
		return false
	}
	e, ok := m.assignedAt[tid][p]
	return ok && e <= memberEpoch
}

// ValidateConsumerFetch checks the member of an OffsetFetch v9+ that names
// one (consumer groups only; classic groups accept any).
func (g *Group) ValidateConsumerFetch(memberID string, memberEpoch int32) *kerr.Error {
	if g.consumer == nil {
		return nil
	}
	m := g.consumer.members[memberID]
	if m == nil {
		return kerr.UnknownMemberID
	}
	if memberEpoch != m.epoch {
		return kerr.StaleMemberEpoch
	}
	return nil
}

// ConsumerMemberInfo describes one consumer-protocol member for
// ConsumerGroupDescribe.
type ConsumerMemberInfo struct {
	MemberID         string
	InstanceID       *string
	RackID           *string
	Epoch            int32
	ClientID         string
	ClientHost       string
	SubscribedTopics []string
	SubscribedRegex  string
	Assigned         Assignment
	Target           Assignment
}

// ConsumerDescription is a consumer group as ConsumerGroupDescribe reports
// it.
type ConsumerDescription struct {
	State       string
	Epoch       int32
	AssignEpoch int32
	Assignor    string
	Members     []ConsumerMemberInfo
}

// DescribeConsumer describes a consumer group; ok is false for a classic
// group.
func (g *Group) DescribeConsumer() (ConsumerDescription, bool) {
	cs := g.consumer
	if cs == nil {
		return ConsumerDescription{}, false
	}
	d := ConsumerDescription{State: g.StateName(), Epoch: cs.epoch, AssignEpoch: cs.assignEpoch, Assignor: cs.assignor}
	if d.Assignor == "" {
		d.Assignor = AssignorUniform
	}
	for _, id := range slices.Sorted(maps.Keys(cs.members)) {
		m := cs.members[id]
		d.Members = append(d.Members, ConsumerMemberInfo{
			MemberID: id, InstanceID: m.instanceID, RackID: m.rackID, Epoch: m.epoch,
			ClientID: m.clientID, ClientHost: m.clientHost, SubscribedTopics: slices.Clone(m.subscribed),
			SubscribedRegex: m.regex, Assigned: cloneAssignment(m.assigned), Target: cloneAssignment(cs.target[id]),
		})
	}
	return d, true
}

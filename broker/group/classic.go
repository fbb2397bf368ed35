package group

import (
	"crypto/rand"
	"encoding/hex"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// State is the state of a classic group, named as Kafka names it.
type State int8

// The states of a classic group (Kafka's ClassicGroupState).
const (
	// Empty: no members; offsets may still be committed (simple consumers).
	Empty State = iota
	// PreparingRebalance: waiting for members to (re)join.
	PreparingRebalance
	// CompletingRebalance: joined; waiting for the leader's assignment.
	CompletingRebalance
	// Stable: every member has its assignment.
	Stable
	// Dead: deleted; every request is told to find the coordinator again.
	Dead
)

// String returns Kafka's name of the state, as DescribeGroups and
// ListGroups report it.
func (s State) String() string {
	switch s {
	case Empty:
		return "Empty"
	case PreparingRebalance:
		return "PreparingRebalance"
	case CompletingRebalance:
		return "CompletingRebalance"
	case Stable:
		return "Stable"
	default:
		return "Dead"
	}
}

// Config holds the coordinator settings that shape a group's behaviour.
type Config struct {
	// MinSessionTimeout and MaxSessionTimeout are group.min.session.timeout.ms
	// and group.max.session.timeout.ms: a JoinGroup outside the range gets
	// INVALID_SESSION_TIMEOUT.
	MinSessionTimeout, MaxSessionTimeout time.Duration
	// InitialRebalanceDelay is group.initial.rebalance.delay.ms: the first
	// rebalance of an empty group waits this long (and again, up to the
	// rebalance timeout, while new members keep arriving).
	InitialRebalanceDelay time.Duration
	// MaxSize is group.max.size; joins beyond it get GROUP_MAX_SIZE_REACHED.
	MaxSize int
	// NewMemberJoinTimeout bounds how long a brand-new member may wait in a
	// rebalance without its session being checked (Kafka: 5 minutes).
	NewMemberJoinTimeout time.Duration
	// NewMemberID returns a fresh member id for clientID; nil means Kafka's
	// form clientID + "-" + random UUID. Tests inject a deterministic one.
	NewMemberID func(clientID string) string
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		MinSessionTimeout:     6 * time.Second,
		MaxSessionTimeout:     30 * time.Minute,
		InitialRebalanceDelay: 3 * time.Second,
		MaxSize:               1<<31 - 1,
		NewMemberJoinTimeout:  5 * time.Minute,
	}
}

// Protocol is one assignment protocol a member supports, with the member's
// metadata (subscription) for it.
type Protocol struct {
	Name     string
	Metadata []byte
}

// JoinRequest is a JoinGroup as the state machine needs it.
type JoinRequest struct {
	MemberID         string
	InstanceID       *string
	ClientID         string
	ClientHost       string
	ProtocolType     string
	Protocols        []Protocol
	SessionTimeout   time.Duration
	RebalanceTimeout time.Duration
	// RequireKnownMemberID is set for JoinGroup v4+ (KIP-394): a dynamic
	// member without an id gets MEMBER_ID_REQUIRED and must join again.
	RequireKnownMemberID bool
	// SupportsSkipAssignment is set for JoinGroup v9+ (KIP-814).
	SupportsSkipAssignment bool
}

// JoinMember is one member as the leader sees it in its JoinGroup answer.
type JoinMember struct {
	MemberID   string
	InstanceID *string
	Metadata   []byte
}

// JoinResult is the answer to a JoinGroup. Err nil means success.
type JoinResult struct {
	Err            *kerr.Error
	MemberID       string
	Generation     int32
	ProtocolType   string
	Protocol       string
	Leader         string
	SkipAssignment bool
	// Members is set for the leader only: every member with its metadata
	// for the selected protocol, in join order.
	Members []JoinMember
}

// SyncRequest is a SyncGroup as the state machine needs it.
type SyncRequest struct {
	MemberID     string
	InstanceID   *string
	Generation   int32
	ProtocolType *string // v5+
	Protocol     *string // v5+
	// Assignments is the leader's assignment by member id; ignored for
	// followers.
	Assignments map[string][]byte
}

// SyncResult is the answer to a SyncGroup. Err nil means success.
type SyncResult struct {
	Err          *kerr.Error
	ProtocolType string
	Protocol     string
	Assignment   []byte
}

// LeaveMember names one member leaving (LeaveGroup v3+ batches them).
type LeaveMember struct {
	MemberID   string
	InstanceID *string
}

// member is one member of the group.
type member struct {
	id               string
	instanceID       *string
	clientID         string
	clientHost       string
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	protocols        []Protocol
	assignment       []byte
	// deadline is when the session expires unless a heartbeat (or a join
	// or sync) arrives first.
	deadline time.Time
	// isNew is set from a member's first join until its first join answer;
	// such a member waiting in a rebalance is bounded by
	// NewMemberJoinTimeout instead of being kept alive.
	isNew bool
	// joinCB is set while the member waits for the join phase to end.
	joinCB func(JoinResult)
	// syncCB is set while the member waits for the leader's assignment.
	syncCB func(SyncResult)
}

func (m *member) metadataFor(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

// matches reports whether ps equals the member's protocols (names and
// metadata, in order), as Kafka's MemberMetadata.matches.
func (m *member) matches(ps []Protocol) bool {
	return slices.EqualFunc(m.protocols, ps, func(a, b Protocol) bool {
		return a.Name == b.Name && string(a.Metadata) == string(b.Metadata)
	})
}

// Group is one classic consumer group and its committed offsets. See the
// package comment for the ownership contract.
type Group struct {
	id  string
	cfg Config

	state State
	// stateTime is when the group last changed state (Kafka's
	// currentStateTimestamp), used for offset expiry of empty groups.
	stateTime    time.Time
	protocolType string
	// protocol is the protocol selected for the current generation; "" when
	// the group is Empty.
	protocol   string
	generation int32
	// leader is the member id of the leader, "" when there are no members.
	// Invariant: leader == "" || members[leader] != nil.
	leader string
	// members by id, and order: member ids in join order (the order the
	// leader sees them in).
	// Invariant: len(order) == len(members) and they hold the same ids.
	members map[string]*member
	order   []string
	// static maps group.instance.id to the member id holding it.
	static map[string]string
	// pending holds member ids handed out with MEMBER_ID_REQUIRED that have
	// not joined again yet, with their expiry.
	pending map[string]time.Time
	// pendingSync holds members of the new generation that have not sent
	// SyncGroup yet; syncDeadline (zero when unset) removes them.
	pendingSync  map[string]bool
	syncDeadline time.Time

	// joinDeadline (zero when unset) ends the join phase. While initialDelay
	// is set it is the initial rebalance delay of a formerly empty group.
	joinDeadline     time.Time
	initialDelay     bool
	initialRemaining time.Duration
	newMemberAdded   bool

	// dirty is set when the group metadata changed in a way that must be
	// persisted (a new generation, an assignment, a replaced static
	// member); TakeDirty clears it.
	dirty bool

	offsets map[TopicPartition]Offset

	// consumer is set while the group uses the consumer protocol (KIP-848);
	// the classic fields above are then unused (no classic members).
	consumer *consumerState
	// persisted is the consumer-group image last written to the log (values
	// by record key), what ConsumerRecords diffs against; nil when nothing
	// is written.
	persisted map[RecordKey][]byte
	// undo holds the entries of persisted that the last diff replaced, for
	// ConsumerRecordsLost.
	undo []persistUndo
	// imageStale is set by every change that may alter the consumer-group
	// image beyond single members (group epoch and target recomputed,
	// membership, conversion); staleMembers names members whose own records
	// may have changed. ConsumerRecords encodes only what they name, so
	// timer ticks over idle groups cost nothing and a steady heartbeat
	// encodes one member.
	imageStale   bool
	staleMembers map[string]bool
}

// New returns an empty group.
func New(id string, cfg Config, now time.Time) *Group {
	return &Group{
		id: id, cfg: cfg, state: Empty, stateTime: now,
		members: map[string]*member{}, static: map[string]string{},
		pending: map[string]time.Time{}, pendingSync: map[string]bool{},
		offsets: map[TopicPartition]Offset{},
	}
}

// ID returns the group id.
func (g *Group) ID() string { return g.id }

// State returns the group's state.
func (g *Group) State() State { return g.state }

// Generation returns the current generation id.
func (g *Group) Generation() int32 { return g.generation }

// ProtocolType returns the protocol type ("consumer" for consumers, "" for
// groups that only commit offsets).
func (g *Group) ProtocolType() string { return g.protocolType }

// Protocol returns the selected protocol of the current generation.
func (g *Group) Protocol() string { return g.protocol }

// Leader returns the leader's member id, "" when none.
func (g *Group) Leader() string { return g.leader }

// NumMembers returns the number of members (pending member ids excluded).
func (g *Group) NumMembers() int { return len(g.members) }

// TakeDirty reports whether the metadata must be persisted and clears the
// flag.
func (g *Group) TakeDirty() bool {
	d := g.dirty
	g.dirty = false
	return d
}

func (g *Group) transition(s State, now time.Time) {
	g.state = s
	g.stateTime = now
}

func (g *Group) newMemberID(clientID string) string {
	if g.cfg.NewMemberID != nil {
		return g.cfg.NewMemberID(clientID)
	}
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	h := hex.EncodeToString(u[:])
	return clientID + "-" + h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// candidateProtocols returns the protocols every member supports, in the
// preference order of the first member.
func (g *Group) candidateProtocols() []string {
	if len(g.order) == 0 {
		return nil
	}
	var out []string
	for _, p := range g.members[g.order[0]].protocols {
		all := true
		for _, id := range g.order[1:] {
			if g.members[id].metadataFor(p.Name) == nil && !hasProtocol(g.members[id].protocols, p.Name) {
				all = false
				break
			}
		}
		if all {
			out = append(out, p.Name)
		}
	}
	return out
}

func hasProtocol(ps []Protocol, name string) bool {
	return slices.ContainsFunc(ps, func(p Protocol) bool { return p.Name == name })
}

// supportsProtocols is Kafka's ClassicGroup.supportsProtocols: an empty
// group takes any non-empty protocol type and protocol list; otherwise the
// type must match and at least one protocol must be common to all members.
func (g *Group) supportsProtocols(ptype string, ps []Protocol) bool {
	if len(g.members) == 0 {
		return ptype != "" && len(ps) > 0
	}
	if ptype != g.protocolType {
		return false
	}
	for _, c := range g.candidateProtocols() {
		if hasProtocol(ps, c) {
			return true
		}
	}
	return false
}

// selectProtocol is Kafka's vote: among the protocols every member
// supports, each member votes for the first one it lists; most votes win,
// ties go to the protocol the first member prefers.
func (g *Group) selectProtocol() string {
	cands := g.candidateProtocols()
	votes := map[string]int{}
	for _, id := range g.order {
		for _, p := range g.members[id].protocols {
			if slices.Contains(cands, p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best, bestN := "", -1
	for _, c := range cands {
		if votes[c] > bestN {
			best, bestN = c, votes[c]
		}
	}
	return best
}

func (g *Group) rebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

// validateMember is Kafka's ClassicGroup.validateMember: a static member is
// checked by instance id (UNKNOWN_MEMBER_ID when unknown, FENCED_INSTANCE_ID
// when another member id holds it), a dynamic one by member id.
func (g *Group) validateMember(memberID string, instanceID *string) (*member, *kerr.Error) {
	if instanceID != nil {
		holder, ok := g.static[*instanceID]
		if !ok {
			return nil, kerr.UnknownMemberID
		}
		if holder != memberID {
			return nil, kerr.FencedInstanceID
		}
	}
	m, ok := g.members[memberID]
	if !ok {
		return nil, kerr.UnknownMemberID
	}
	return m, nil
}

// Join handles a JoinGroup. cb receives the answer, now or when the
// rebalance completes.
func (g *Group) Join(now time.Time, req JoinRequest, cb func(JoinResult)) {
	defer g.checkInvariants()
	fail := func(e *kerr.Error) { cb(JoinResult{Err: e, MemberID: req.MemberID, Generation: -1}) }
	if req.SessionTimeout < g.cfg.MinSessionTimeout || req.SessionTimeout > g.cfg.MaxSessionTimeout {
		fail(kerr.InvalidSessionTimeout)
		return
	}
	if g.state == Dead {
		fail(kerr.CoordinatorNotAvailable)
		return
	}
	if !g.toClassic() {
		// A consumer-protocol group with members takes no classic joins.
		fail(kerr.InconsistentGroupProtocol)
		return
	}
	if !g.supportsProtocols(req.ProtocolType, req.Protocols) {
		fail(kerr.InconsistentGroupProtocol)
		return
	}
	if req.MemberID == "" {
		g.joinUnknown(now, req, cb)
		return
	}
	if _, ok := g.pending[req.MemberID]; ok {
		delete(g.pending, req.MemberID)
		g.addMemberAndRebalance(now, req, req.MemberID, cb)
		return
	}
	m, e := g.validateMember(req.MemberID, req.InstanceID)
	if e != nil {
		fail(e)
		return
	}
	switch g.state {
	case PreparingRebalance:
		g.updateMemberAndRebalance(now, m, req, cb)
	case CompletingRebalance:
		if m.matches(req.Protocols) {
			// The member lost our answer; give it again.
			cb(g.joinResultFor(m))
			return
		}
		g.updateMemberAndRebalance(now, m, req, cb)
	case Stable:
		if m.id == g.leader || !m.matches(req.Protocols) {
			g.updateMemberAndRebalance(now, m, req, cb)
			return
		}
		m.deadline = now.Add(m.sessionTimeout)
		cb(JoinResult{MemberID: m.id, Generation: g.generation, ProtocolType: g.protocolType, Protocol: g.protocol, Leader: g.leader})
	default:
		fail(kerr.UnknownMemberID)
	}
}

func (g *Group) joinUnknown(now time.Time, req JoinRequest, cb func(JoinResult)) {
	if len(g.members)+len(g.pending) >= g.cfg.MaxSize {
		cb(JoinResult{Err: kerr.GroupMaxSizeReached, Generation: -1})
		return
	}
	id := g.newMemberID(req.ClientID)
	if req.InstanceID != nil {
		if old, ok := g.static[*req.InstanceID]; ok {
			g.updateStaticMemberAndRebalance(now, old, id, req, cb)
			return
		}
		g.addMemberAndRebalance(now, req, id, cb)
		return
	}
	if req.RequireKnownMemberID {
		g.pending[id] = now.Add(req.SessionTimeout)
		cb(JoinResult{Err: kerr.MemberIDRequired, MemberID: id, Generation: -1})
		return
	}
	g.addMemberAndRebalance(now, req, id, cb)
}

func (g *Group) addMemberAndRebalance(now time.Time, req JoinRequest, id string, cb func(JoinResult)) {
	m := &member{
		id: id, instanceID: req.InstanceID, clientID: req.ClientID, clientHost: req.ClientHost,
		sessionTimeout: req.SessionTimeout, rebalanceTimeout: req.RebalanceTimeout,
		protocols: slices.Clone(req.Protocols), isNew: true, joinCB: cb,
		deadline: now.Add(g.cfg.NewMemberJoinTimeout),
	}
	if len(g.members) == 0 {
		g.protocolType = req.ProtocolType
	}
	g.members[id] = m
	g.order = append(g.order, id)
	if req.InstanceID != nil {
		g.static[*req.InstanceID] = id
	}
	if g.leader == "" {
		g.leader = id
	}
	if g.state == PreparingRebalance && g.initialDelay {
		g.newMemberAdded = true
	}
	g.maybePrepareRebalance(now)
}

func (g *Group) updateMemberAndRebalance(now time.Time, m *member, req JoinRequest, cb func(JoinResult)) {
	m.protocols = slices.Clone(req.Protocols)
	m.sessionTimeout, m.rebalanceTimeout = req.SessionTimeout, req.RebalanceTimeout
	m.clientID, m.clientHost = req.ClientID, req.ClientHost
	if m.joinCB != nil {
		// A second join of the same member supersedes the first; its
		// waiter is answered so no request hangs, and the client rejoins.
		m.joinCB(JoinResult{Err: kerr.RebalanceInProgress, MemberID: m.id, Generation: -1})
	}
	m.joinCB = cb
	g.maybePrepareRebalance(now)
}

// updateStaticMemberAndRebalance replaces the member id held by a static
// member that joined again without its id (a restarted instance): the old
// id is fenced.
func (g *Group) updateStaticMemberAndRebalance(now time.Time, oldID, newID string, req JoinRequest, cb func(JoinResult)) {
	m := g.members[oldID]
	if m.joinCB != nil {
		m.joinCB(JoinResult{Err: kerr.FencedInstanceID, MemberID: oldID, Generation: -1})
		m.joinCB = nil
	}
	if m.syncCB != nil {
		m.syncCB(SyncResult{Err: kerr.FencedInstanceID})
		m.syncCB = nil
	}
	delete(g.members, oldID)
	m.id = newID
	g.members[newID] = m
	g.order[slices.Index(g.order, oldID)] = newID
	g.static[*req.InstanceID] = newID
	if g.leader == oldID {
		g.leader = newID
	}
	if g.pendingSync[oldID] {
		delete(g.pendingSync, oldID)
		g.pendingSync[newID] = true
	}
	m.deadline = now.Add(req.SessionTimeout)
	m.protocols = slices.Clone(req.Protocols)
	m.sessionTimeout, m.rebalanceTimeout = req.SessionTimeout, req.RebalanceTimeout
	m.clientID, m.clientHost = req.ClientID, req.ClientHost
	m.joinCB = cb
	switch g.state {
	case Stable:
		if g.selectProtocol() == g.protocol {
			// Same protocol for the next generation: persist the new member
			// id and hand the member its current generation.
			g.dirty = true
			m.joinCB = nil
			res := JoinResult{MemberID: newID, Generation: g.generation, ProtocolType: g.protocolType, Protocol: g.protocol, Leader: g.leader}
			if req.SupportsSkipAssignment && g.leader == newID {
				res.SkipAssignment = true
				res.Members = g.memberList()
			}
			cb(res)
			return
		}
		g.prepareRebalance(now)
	case CompletingRebalance:
		// The leader may already have computed an assignment for the old id.
		g.prepareRebalance(now)
	case PreparingRebalance:
		g.tryCompleteJoin(now)
	}
}

func (g *Group) maybePrepareRebalance(now time.Time) {
	switch g.state {
	case Stable, CompletingRebalance, Empty:
		g.prepareRebalance(now)
	case PreparingRebalance:
		g.tryCompleteJoin(now)
	}
}

// prepareRebalance starts a join phase. Members waiting for an assignment
// of the generation being abandoned are told REBALANCE_IN_PROGRESS.
func (g *Group) prepareRebalance(now time.Time) {
	if g.state == CompletingRebalance {
		for _, id := range g.order {
			m := g.members[id]
			m.assignment = nil
			if m.syncCB != nil {
				m.syncCB(SyncResult{Err: kerr.RebalanceInProgress})
				m.syncCB = nil
			}
		}
	}
	clear(g.pendingSync)
	g.syncDeadline = time.Time{}
	wasEmpty := g.state == Empty
	g.transition(PreparingRebalance, now)
	if wasEmpty && g.cfg.InitialRebalanceDelay > 0 {
		g.initialDelay = true
		g.newMemberAdded = false
		d := g.cfg.InitialRebalanceDelay
		g.initialRemaining = max(g.rebalanceTimeout()-d, 0)
		g.joinDeadline = now.Add(d)
		return
	}
	g.initialDelay = false
	g.joinDeadline = now.Add(g.rebalanceTimeout())
	g.tryCompleteJoin(now)
}

// allJoined is Kafka's hasAllMembersJoined.
func (g *Group) allJoined() bool {
	if len(g.pending) > 0 {
		return false
	}
	for _, m := range g.members {
		if m.joinCB == nil {
			return false
		}
	}
	return true
}

func (g *Group) tryCompleteJoin(now time.Time) {
	if g.state == PreparingRebalance && !g.initialDelay && g.allJoined() {
		g.completeJoin(now)
	}
}

// completeJoin ends the join phase (everyone joined, or the deadline
// passed): dynamic members that did not rejoin are dropped, the next
// generation starts, and every waiting member gets its answer.
func (g *Group) completeJoin(now time.Time) {
	for _, id := range slices.Clone(g.order) {
		if m := g.members[id]; m.joinCB == nil && m.instanceID == nil {
			g.removeMember(id, kerr.UnknownMemberID)
		}
	}
	if len(g.members) > 0 && !g.electJoinedLeader() {
		// No member rejoined (only static members remain, silent): wait
		// another rebalance timeout for session timeouts to remove them.
		g.joinDeadline = now.Add(g.rebalanceTimeout())
		return
	}
	g.joinDeadline = time.Time{}
	g.initialDelay = false
	g.generation++
	if len(g.members) == 0 {
		g.protocol = ""
		g.transition(Empty, now)
		g.dirty = true
		return
	}
	g.protocol = g.selectProtocol()
	g.transition(CompletingRebalance, now)
	var syncTimeout time.Duration
	for _, id := range g.order {
		m := g.members[id]
		g.pendingSync[id] = true
		syncTimeout = max(syncTimeout, m.rebalanceTimeout)
		if m.joinCB == nil {
			continue
		}
		cb := m.joinCB
		m.joinCB = nil
		m.isNew = false
		m.deadline = now.Add(m.sessionTimeout)
		cb(g.joinResultFor(m))
	}
	g.syncDeadline = now.Add(syncTimeout)
}

// electJoinedLeader keeps the leader if it rejoined, else picks the first
// member that did; false when nobody did.
func (g *Group) electJoinedLeader() bool {
	if m := g.members[g.leader]; m != nil && m.joinCB != nil {
		return true
	}
	for _, id := range g.order {
		if g.members[id].joinCB != nil {
			g.leader = id
			return true
		}
	}
	return false
}

func (g *Group) memberList() []JoinMember {
	out := make([]JoinMember, 0, len(g.order))
	for _, id := range g.order {
		m := g.members[id]
		out = append(out, JoinMember{MemberID: id, InstanceID: m.instanceID, Metadata: m.metadataFor(g.protocol)})
	}
	return out
}

func (g *Group) joinResultFor(m *member) JoinResult {
	res := JoinResult{MemberID: m.id, Generation: g.generation, ProtocolType: g.protocolType, Protocol: g.protocol, Leader: g.leader}
	if m.id == g.leader {
		res.Members = g.memberList()
	}
	return res
}

// removeMember drops a member; a waiting join or sync answer gets e. The
// caller decides what happens to the group next.
func (g *Group) removeMember(id string, e *kerr.Error) {
	m := g.members[id]
	if m == nil {
		return
	}
	if m.joinCB != nil {
		m.joinCB(JoinResult{Err: e, MemberID: id, Generation: -1})
		m.joinCB = nil
	}
	if m.syncCB != nil {
		m.syncCB(SyncResult{Err: e})
		m.syncCB = nil
	}
	delete(g.members, id)
	g.order = slices.DeleteFunc(g.order, func(s string) bool { return s == id })
	if m.instanceID != nil && g.static[*m.instanceID] == id {
		delete(g.static, *m.instanceID)
	}
	delete(g.pendingSync, id)
	if g.leader == id {
		g.leader = ""
		for _, oid := range g.order {
			if g.members[oid].joinCB != nil {
				g.leader = oid
				break
			}
		}
		if g.leader == "" && len(g.order) > 0 {
			g.leader = g.order[0]
		}
	}
}

// removeMemberAndUpdate removes a member and rebalances or completes the
// join phase, as Kafka's removeMemberAndUpdateGroup.
func (g *Group) removeMemberAndUpdate(now time.Time, id string, e *kerr.Error) {
	g.removeMember(id, e)
	switch g.state {
	case Stable, CompletingRebalance:
		g.prepareRebalance(now)
	case PreparingRebalance:
		g.tryCompleteJoin(now)
	}
}

// Sync handles a SyncGroup. cb receives the answer, now or when the leader's
// assignment arrives.
func (g *Group) Sync(now time.Time, req SyncRequest, cb func(SyncResult)) {
	defer g.checkInvariants()
	fail := func(e *kerr.Error) { cb(SyncResult{Err: e}) }
	if g.state == Dead {
		fail(kerr.CoordinatorNotAvailable)
		return
	}
	if g.consumer != nil {
		fail(kerr.UnknownMemberID)
		return
	}
	m, e := g.validateMember(req.MemberID, req.InstanceID)
	if e != nil {
		fail(e)
		return
	}
	if req.Generation != g.generation {
		fail(kerr.IllegalGeneration)
		return
	}
	if (req.ProtocolType != nil && *req.ProtocolType != g.protocolType) || (req.Protocol != nil && *req.Protocol != g.protocol) {
		fail(kerr.InconsistentGroupProtocol)
		return
	}
	switch g.state {
	case Empty:
		fail(kerr.UnknownMemberID)
	case PreparingRebalance:
		fail(kerr.RebalanceInProgress)
	case CompletingRebalance:
		m.deadline = now.Add(m.sessionTimeout)
		delete(g.pendingSync, m.id)
		if m.syncCB != nil {
			m.syncCB(SyncResult{Err: kerr.RebalanceInProgress})
		}
		m.syncCB = cb
		if m.id != g.leader {
			return
		}
		for _, id := range g.order {
			g.members[id].assignment = slices.Clone(req.Assignments[id])
		}
		g.dirty = true
		g.transition(Stable, now)
		for _, id := range g.order {
			om := g.members[id]
			if om.syncCB != nil {
				scb := om.syncCB
				om.syncCB = nil
				scb(SyncResult{ProtocolType: g.protocolType, Protocol: g.protocol, Assignment: om.assignment})
			}
		}
		if len(g.pendingSync) == 0 {
			g.syncDeadline = time.Time{}
		}
	case Stable:
		m.deadline = now.Add(m.sessionTimeout)
		delete(g.pendingSync, m.id)
		if len(g.pendingSync) == 0 {
			g.syncDeadline = time.Time{}
		}
		cb(SyncResult{ProtocolType: g.protocolType, Protocol: g.protocol, Assignment: m.assignment})
	}
}

// Heartbeat handles a Heartbeat and returns its error (nil for none).
func (g *Group) Heartbeat(now time.Time, memberID string, instanceID *string, generation int32) *kerr.Error {
	defer g.checkInvariants()
	if g.state == Dead {
		return kerr.CoordinatorNotAvailable
	}
	if g.consumer != nil {
		return kerr.UnknownMemberID
	}
	m, e := g.validateMember(memberID, instanceID)
	if e != nil {
		return e
	}
	if generation != g.generation {
		return kerr.IllegalGeneration
	}
	switch g.state {
	case Empty:
		return kerr.UnknownMemberID
	case CompletingRebalance, Stable:
		m.deadline = now.Add(m.sessionTimeout)
		return nil
	default: // PreparingRebalance
		m.deadline = now.Add(m.sessionTimeout)
		return kerr.RebalanceInProgress
	}
}

// Leave handles a LeaveGroup. It returns a top-level error (the group is
// dead) or one error per member, nil for success.
func (g *Group) Leave(now time.Time, ms []LeaveMember) (*kerr.Error, []*kerr.Error) {
	defer g.checkInvariants()
	if g.state == Dead {
		return kerr.CoordinatorNotAvailable, nil
	}
	errs := make([]*kerr.Error, len(ms))
	if g.consumer != nil {
		for i := range errs {
			errs[i] = kerr.UnknownMemberID
		}
		return nil, errs
	}
	changed := false
	for i, lm := range ms {
		id := lm.MemberID
		if lm.InstanceID != nil {
			holder, ok := g.static[*lm.InstanceID]
			switch {
			case !ok:
				errs[i] = kerr.UnknownMemberID
				continue
			case id != "" && holder != id:
				errs[i] = kerr.FencedInstanceID
				continue
			}
			id = holder
		} else if _, ok := g.pending[id]; ok {
			delete(g.pending, id)
			changed = true
			continue
		}
		if _, ok := g.members[id]; !ok {
			errs[i] = kerr.UnknownMemberID
			continue
		}
		g.removeMember(id, kerr.UnknownMemberID)
		changed = true
	}
	if changed {
		switch g.state {
		case Stable, CompletingRebalance:
			g.prepareRebalance(now)
		case PreparingRebalance:
			g.tryCompleteJoin(now)
		}
	}
	return nil, errs
}

// Tick fires every timer that is due at now: pending member ids, the end
// of the join phase, the sync timeout, and session timeouts.
func (g *Group) Tick(now time.Time) {
	defer g.checkInvariants()
	if g.consumer != nil {
		g.tickConsumer(now)
		return
	}
	for id, dl := range g.pending {
		if !now.Before(dl) {
			delete(g.pending, id)
			g.tryCompleteJoin(now)
		}
	}
	if !g.joinDeadline.IsZero() && !now.Before(g.joinDeadline) && g.state == PreparingRebalance {
		if g.initialDelay && g.newMemberAdded && g.initialRemaining > 0 {
			g.newMemberAdded = false
			d := min(g.initialRemaining, g.cfg.InitialRebalanceDelay)
			g.initialRemaining -= d
			g.joinDeadline = now.Add(d)
		} else {
			g.initialDelay = false
			g.completeJoin(now)
		}
	}
	if !g.syncDeadline.IsZero() && !now.Before(g.syncDeadline) && (g.state == CompletingRebalance || g.state == Stable) {
		g.syncDeadline = time.Time{}
		if len(g.pendingSync) > 0 {
			for _, id := range slices.Clone(g.order) {
				if g.pendingSync[id] {
					g.removeMember(id, kerr.UnknownMemberID)
				}
			}
			g.prepareRebalance(now)
		}
	}
	for _, id := range slices.Clone(g.order) {
		m := g.members[id]
		if m == nil || now.Before(m.deadline) {
			continue
		}
		switch {
		case m.joinCB != nil && !m.isNew, m.syncCB != nil:
			// Waiting members are kept alive by their pending request.
			continue
		}
		g.removeMemberAndUpdate(now, id, kerr.UnknownMemberID)
	}
}

// Snapshot returns the group metadata record value (Kafka's
// GroupMetadataValue v3) for the current generation.
func (g *Group) Snapshot() kmsg.GroupMetadataValue {
	v := kmsg.NewGroupMetadataValue()
	v.Version = 3
	v.ProtocolType = g.protocolType
	v.Generation = g.generation
	if g.protocol != "" {
		v.Protocol = kmsg.StringPtr(g.protocol)
	}
	if g.leader != "" {
		v.Leader = kmsg.StringPtr(g.leader)
	}
	v.CurrentStateTimestamp = g.stateTime.UnixMilli()
	for _, id := range g.order {
		m := g.members[id]
		mm := kmsg.NewGroupMetadataValueMember()
		mm.MemberID = id
		mm.InstanceID = m.instanceID
		mm.ClientID, mm.ClientHost = m.clientID, m.clientHost
		mm.RebalanceTimeoutMillis = int32(m.rebalanceTimeout / time.Millisecond)
		mm.SessionTimeoutMillis = int32(m.sessionTimeout / time.Millisecond)
		mm.Subscription = m.metadataFor(g.protocol)
		mm.Assignment = m.assignment
		v.Members = append(v.Members, mm)
	}
	return v
}

// Restore rebuilds a group from its last metadata record, as a coordinator
// does when it loads its partition: Empty without members, else Stable with
// fresh session deadlines (members keep their assignments and heartbeat on).
func (g *Group) Restore(v *kmsg.GroupMetadataValue, now time.Time) {
	defer g.checkInvariants()
	clear(g.members)
	clear(g.static)
	clear(g.pending)
	clear(g.pendingSync)
	g.order = nil
	g.protocolType = v.ProtocolType
	g.generation = v.Generation
	g.protocol, g.leader = "", ""
	if v.Protocol != nil {
		g.protocol = *v.Protocol
	}
	for _, mm := range v.Members {
		m := &member{
			id: mm.MemberID, instanceID: mm.InstanceID, clientID: mm.ClientID, clientHost: mm.ClientHost,
			sessionTimeout:   time.Duration(mm.SessionTimeoutMillis) * time.Millisecond,
			rebalanceTimeout: time.Duration(mm.RebalanceTimeoutMillis) * time.Millisecond,
			protocols:        []Protocol{{Name: g.protocol, Metadata: mm.Subscription}},
			assignment:       mm.Assignment,
		}
		m.deadline = now.Add(m.sessionTimeout)
		if _, dup := g.members[m.id]; dup {
			continue
		}
		g.members[m.id] = m
		g.order = append(g.order, m.id)
		if m.instanceID != nil {
			g.static[*m.instanceID] = m.id
		}
	}
	if v.Leader != nil && g.members[*v.Leader] != nil {
		g.leader = *v.Leader
	} else if len(g.order) > 0 {
		g.leader = g.order[0]
	}
	stateTime := now
	if v.CurrentStateTimestamp > 0 {
		stateTime = time.UnixMilli(v.CurrentStateTimestamp)
	}
	if len(g.members) == 0 {
		g.transition(Empty, stateTime)
	} else {
		g.transition(Stable, stateTime)
	}
}

// MarkDead moves the group to Dead (deleted, or its coordinator moved);
// every waiting request is told COORDINATOR_NOT_AVAILABLE.
func (g *Group) MarkDead(now time.Time) {
	defer g.checkInvariants()
	for _, id := range slices.Clone(g.order) {
		g.removeMember(id, kerr.CoordinatorNotAvailable)
	}
	clear(g.pending)
	if g.consumer != nil {
		clear(g.consumer.members)
	}
	g.joinDeadline, g.syncDeadline = time.Time{}, time.Time{}
	g.transition(Dead, now)
}

package group

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// harness drives one Group with a fake clock and records every answer.
type harness struct {
	t     *testing.T
	g     *Group
	now   time.Time
	joins map[string]*JoinResult // by label; nil entry = still waiting
	syncs map[string]*SyncResult
}

func newHarness(t *testing.T) *harness {
	n := 0
	cfg := DefaultConfig()
	cfg.NewMemberID = func(client string) string { n++; return fmt.Sprintf("%s-%d", client, n) }
	now := time.Unix(1_000_000, 0)
	return &harness{t: t, g: New("g", cfg, now), now: now, joins: map[string]*JoinResult{}, syncs: map[string]*SyncResult{}}
}

var (
	rangeP  = Protocol{Name: "range", Metadata: []byte("r")}
	stickyP = Protocol{Name: "cooperative-sticky", Metadata: []byte("s")}
)

func joinReq(client, member string, ps ...Protocol) JoinRequest {
	if len(ps) == 0 {
		ps = []Protocol{rangeP}
	}
	return JoinRequest{MemberID: member, ClientID: client, ProtocolType: "consumer", Protocols: ps,
		SessionTimeout: 10 * time.Second, RebalanceTimeout: 30 * time.Second, RequireKnownMemberID: true}
}

// join sends a JoinGroup recorded under label.
func (h *harness) join(label string, req JoinRequest) {
	h.joins[label] = nil
	h.g.Join(h.now, req, func(r JoinResult) {
		if h.joins[label] != nil {
			h.t.Fatalf("%s: answered twice", label)
		}
		h.joins[label] = &r
	})
}

func (h *harness) sync(label, member string, gen int32, assign map[string][]byte) {
	h.syncs[label] = nil
	h.g.Sync(h.now, SyncRequest{MemberID: member, Generation: gen, Assignments: assign}, func(r SyncResult) {
		if h.syncs[label] != nil {
			h.t.Fatalf("%s: answered twice", label)
		}
		h.syncs[label] = &r
	})
}

func (h *harness) advance(d time.Duration) {
	h.now = h.now.Add(d)
	h.g.Tick(h.now)
}

func (h *harness) joined(label string, wantErr *kerr.Error) *JoinResult {
	h.t.Helper()
	r := h.joins[label]
	if r == nil {
		h.t.Fatalf("%s: join not answered", label)
	}
	if r.Err != wantErr {
		h.t.Fatalf("%s: join err %v, want %v", label, r.Err, wantErr)
	}
	return r
}

func (h *harness) waitingJoin(label string) {
	h.t.Helper()
	if r, ok := h.joins[label]; !ok || r != nil {
		h.t.Fatalf("%s: join answered early: %+v", label, r)
	}
}

func (h *harness) synced(label string, wantErr *kerr.Error) *SyncResult {
	h.t.Helper()
	r := h.syncs[label]
	if r == nil {
		h.t.Fatalf("%s: sync not answered", label)
	}
	if r.Err != wantErr {
		h.t.Fatalf("%s: sync err %v, want %v", label, r.Err, wantErr)
	}
	return r
}

func (h *harness) state(want State) {
	h.t.Helper()
	if h.g.State() != want {
		h.t.Fatalf("state %v, want %v", h.g.State(), want)
	}
}

func (h *harness) hb(member string, gen int32, want *kerr.Error) {
	h.t.Helper()
	if e := h.g.Heartbeat(h.now, member, nil, gen); e != want {
		h.t.Fatalf("heartbeat %s gen %d: %v, want %v", member, gen, e, want)
	}
}

// stableOne brings a one-member group (member "a-1") to Stable at
// generation 1 through MEMBER_ID_REQUIRED and the initial delay.
func (h *harness) stableOne() {
	h.join("a0", joinReq("a", ""))
	id := h.joined("a0", kerr.MemberIDRequired).MemberID
	if id != "a-1" {
		h.t.Fatalf("member id %q", id)
	}
	h.join("a1", joinReq("a", id))
	h.waitingJoin("a1")
	h.state(PreparingRebalance)
	h.advance(2 * time.Second)
	h.waitingJoin("a1") // initial delay is 3s
	h.advance(time.Second)
	r := h.joined("a1", nil)
	if r.Generation != 1 || r.Leader != "a-1" || len(r.Members) != 1 || r.Protocol != "range" {
		h.t.Fatalf("join result %+v", r)
	}
	h.state(CompletingRebalance)
	h.sync("as1", "a-1", 1, map[string][]byte{"a-1": []byte("A")})
	if got := h.synced("as1", nil).Assignment; string(got) != "A" {
		h.t.Fatalf("assignment %q", got)
	}
	h.state(Stable)
	if !h.g.TakeDirty() {
		h.t.Fatal("assignment not marked for persistence")
	}
}

func TestJoinSyncLifecycle(t *testing.T) {
	h := newHarness(t)
	h.stableOne()
	h.hb("a-1", 1, nil)

	// b joins: a rebalance starts, a learns of it from its heartbeat.
	h.join("b1", joinReq("b", "b-x")) // unknown member id
	h.joined("b1", kerr.UnknownMemberID)
	h.join("b0", joinReq("b", ""))
	bid := h.joined("b0", kerr.MemberIDRequired).MemberID
	h.state(Stable) // a pending member id does not rebalance
	h.join("b1", joinReq("b", bid))
	h.state(PreparingRebalance)
	h.hb("a-1", 1, kerr.RebalanceInProgress)
	h.sync("as-stale", "a-1", 1, nil)
	h.synced("as-stale", kerr.RebalanceInProgress)
	h.waitingJoin("b1")
	h.join("a2", joinReq("a", "a-1"))
	// Everyone rejoined: no delay for a group that was not empty.
	ra, rb := h.joined("a2", nil), h.joined("b1", nil)
	if ra.Generation != 2 || rb.Generation != 2 || ra.Leader != "a-1" || len(ra.Members) != 2 || len(rb.Members) != 0 {
		t.Fatalf("gen 2 answers: %+v %+v", ra, rb)
	}
	h.hb(bid, 2, nil) // heartbeats are fine between join and sync
	h.hb(bid, 1, kerr.IllegalGeneration)
	h.sync("bs2", bid, 2, nil)
	if h.syncs["bs2"] != nil {
		t.Fatal("follower sync answered before the leader's")
	}
	h.sync("as2", "a-1", 2, map[string][]byte{"a-1": []byte("A2"), bid: []byte("B2")})
	if string(h.synced("bs2", nil).Assignment) != "B2" || string(h.synced("as2", nil).Assignment) != "A2" {
		t.Fatal("wrong assignments")
	}
	h.state(Stable)

	// b leaves: rebalance; a rejoins alone and gets generation 3.
	top, errs := h.g.Leave(h.now, []LeaveMember{{MemberID: bid}, {MemberID: "nobody"}})
	if top != nil || errs[0] != nil || errs[1] != kerr.UnknownMemberID {
		t.Fatalf("leave: %v %v", top, errs)
	}
	h.state(PreparingRebalance)
	h.join("a3", joinReq("a", "a-1"))
	if r := h.joined("a3", nil); r.Generation != 3 || len(r.Members) != 1 {
		t.Fatalf("gen 3: %+v", r)
	}

	// The last member leaves: Empty, next generation, persisted.
	h.g.TakeDirty()
	h.g.Leave(h.now, []LeaveMember{{MemberID: "a-1"}})
	h.state(Empty)
	if h.g.Generation() != 4 || !h.g.TakeDirty() {
		t.Fatalf("empty group: generation %d", h.g.Generation())
	}
	h.hb("a-1", 4, kerr.UnknownMemberID)
}

func TestSessionTimeoutRemovesMember(t *testing.T) {
	h := newHarness(t)
	h.stableOne()
	h.join("b0", joinReq("b", ""))
	bid := h.joined("b0", kerr.MemberIDRequired).MemberID
	h.join("b1", joinReq("b", bid))
	h.join("a2", joinReq("a", "a-1"))
	h.joined("b1", nil)
	h.sync("as2", "a-1", 2, map[string][]byte{"a-1": {1}, bid: {2}})
	h.sync("bs2", bid, 2, nil)
	h.state(Stable)
	// a heartbeats, b goes silent.
	for range 3 {
		h.advance(3 * time.Second)
		h.hb("a-1", 2, nil)
	}
	h.state(Stable)
	h.advance(time.Second)
	h.state(PreparingRebalance) // b's 10s session expired
	h.hb(bid, 2, kerr.UnknownMemberID)
	h.join("a3", joinReq("a", "a-1"))
	if r := h.joined("a3", nil); r.Generation != 3 || len(r.Members) != 1 {
		t.Fatalf("after timeout: %+v", r)
	}
}

func TestRebalanceTimeoutDropsSilentMember(t *testing.T) {
	h := newHarness(t)
	h.stableOne()
	h.join("b0", joinReq("b", ""))
	bid := h.joined("b0", kerr.MemberIDRequired).MemberID
	h.join("b1", joinReq("b", bid))
	// a keeps heartbeating but never rejoins: after the rebalance timeout
	// (30s) the generation completes without it.
	for range 9 {
		h.advance(3 * time.Second)
		h.hb("a-1", 1, kerr.RebalanceInProgress)
	}
	h.waitingJoin("b1")
	h.advance(4 * time.Second)
	r := h.joined("b1", nil)
	if r.Generation != 2 || r.Leader != bid || len(r.Members) != 1 {
		t.Fatalf("after rebalance timeout: %+v", r)
	}
	h.hb("a-1", 2, kerr.UnknownMemberID)
}

func TestSyncTimeoutRebalances(t *testing.T) {
	h := newHarness(t)
	h.join("a0", joinReq("a", ""))
	h.join("a1", joinReq("a", h.joined("a0", kerr.MemberIDRequired).MemberID))
	h.advance(3 * time.Second)
	h.joined("a1", nil)
	h.state(CompletingRebalance)
	// The leader never syncs; heartbeats do not save it from the sync
	// timeout (the rebalance timeout).
	for range 11 {
		h.advance(3 * time.Second)
		if h.g.State() != CompletingRebalance {
			break
		}
		h.hb("a-1", 1, nil)
	}
	h.state(Empty)
	if h.g.NumMembers() != 0 || h.g.Generation() != 2 {
		t.Fatalf("members %d generation %d", h.g.NumMembers(), h.g.Generation())
	}
}

func TestStaticMemberRejoin(t *testing.T) {
	h := newHarness(t)
	inst := "instance-1"
	req := joinReq("a", "")
	req.InstanceID = &inst
	h.join("a0", req) // static members get no MEMBER_ID_REQUIRED
	h.waitingJoin("a0")
	h.advance(3 * time.Second)
	old := h.joined("a0", nil)
	h.sync("as", old.MemberID, 1, map[string][]byte{old.MemberID: []byte("X")})
	h.synced("as", nil)
	h.g.TakeDirty()

	// The instance restarts and joins without its member id, same
	// protocols: no rebalance, same generation, new id, old id fenced.
	h.join("a1", req)
	r := h.joined("a1", nil)
	if r.MemberID == old.MemberID || r.Generation != 1 || h.g.State() != Stable {
		t.Fatalf("static rejoin: %+v state %v", r, h.g.State())
	}
	if !h.g.TakeDirty() {
		t.Fatal("replaced static member not persisted")
	}
	if e := h.g.Heartbeat(h.now, old.MemberID, &inst, 1); e != kerr.FencedInstanceID {
		t.Fatalf("old id heartbeat: %v", e)
	}
	if e := h.g.Heartbeat(h.now, r.MemberID, &inst, 1); e != nil {
		t.Fatalf("new id heartbeat: %v", e)
	}
	h.sync("as1", r.MemberID, 1, nil)
	if string(h.synced("as1", nil).Assignment) != "X" {
		t.Fatal("static member lost its assignment")
	}
	top, errs := h.g.Leave(h.now, []LeaveMember{{MemberID: old.MemberID, InstanceID: &inst}})
	if top != nil || errs[0] != kerr.FencedInstanceID {
		t.Fatalf("fenced leave: %v %v", top, errs)
	}
	// With a new protocol the static rejoin rebalances instead.
	req2 := req
	req2.Protocols = []Protocol{stickyP, rangeP}
	h.join("a2", req2)
	h.state(CompletingRebalance) // the only member rejoined: done at once
	r2 := h.joined("a2", nil)
	if r2.Generation != 2 || r2.Protocol != "cooperative-sticky" {
		t.Fatalf("protocol change: %+v", r2)
	}
}

func TestProtocolVote(t *testing.T) {
	h := newHarness(t)
	h.g.cfg.InitialRebalanceDelay = 0
	h.join("a", joinReq("a", "", rangeP, stickyP))
	h.join("a", joinReq("a", h.joined("a", kerr.MemberIDRequired).MemberID, rangeP, stickyP))
	h.joined("a", nil)
	h.join("b", joinReq("b", "", stickyP, rangeP))
	h.join("b", joinReq("b", h.joined("b", kerr.MemberIDRequired).MemberID, stickyP, rangeP))
	h.join("c", joinReq("c", "", stickyP, rangeP))
	h.join("c", joinReq("c", h.joined("c", kerr.MemberIDRequired).MemberID, stickyP, rangeP))
	h.join("bad", joinReq("d", "", Protocol{Name: "roundrobin"}))
	h.joined("bad", kerr.InconsistentGroupProtocol)
	other := joinReq("d", "")
	other.ProtocolType = "connect"
	h.join("bad2", other)
	h.joined("bad2", kerr.InconsistentGroupProtocol)
	h.join("a", joinReq("a", "a-1", rangeP, stickyP))
	if r := h.joined("a", nil); r.Protocol != "cooperative-sticky" || r.Generation != 2 || len(r.Members) != 3 {
		t.Fatalf("vote: %+v", r)
	}
}

func TestJoinErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*JoinRequest)
		want *kerr.Error
	}{
		{"session too short", func(r *JoinRequest) { r.SessionTimeout = time.Second }, kerr.InvalidSessionTimeout},
		{"session too long", func(r *JoinRequest) { r.SessionTimeout = time.Hour }, kerr.InvalidSessionTimeout},
		{"no protocols", func(r *JoinRequest) { r.Protocols = nil }, kerr.InconsistentGroupProtocol},
		{"empty protocol type", func(r *JoinRequest) { r.ProtocolType = "" }, kerr.InconsistentGroupProtocol},
		{"unknown member", func(r *JoinRequest) { r.MemberID = "x" }, kerr.UnknownMemberID},
		{"v3 dynamic needs no id", func(r *JoinRequest) { r.RequireKnownMemberID = false }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.g.cfg.InitialRebalanceDelay = 0
			req := joinReq("a", "")
			tc.mod(&req)
			h.join("j", req)
			h.joined("j", tc.want)
		})
	}
}

func TestValidateCommit(t *testing.T) {
	h := newHarness(t)
	if e := h.g.ValidateCommit("", nil, -1); e != nil {
		t.Fatalf("simple commit to empty group: %v", e)
	}
	h.stableOne()
	inst := "i"
	for _, tc := range []struct {
		member string
		inst   *string
		gen    int32
		want   *kerr.Error
	}{
		{"a-1", nil, 1, nil},
		{"", nil, -1, kerr.UnknownMemberID},
		{"a-1", nil, 0, kerr.IllegalGeneration},
		{"zz", nil, 1, kerr.UnknownMemberID},
		{"a-1", &inst, 1, kerr.UnknownMemberID},
	} {
		if e := h.g.ValidateCommit(tc.member, tc.inst, tc.gen); e != tc.want {
			t.Errorf("commit %q gen %d: %v, want %v", tc.member, tc.gen, e, tc.want)
		}
	}
	h.join("b0", joinReq("b", ""))
	h.join("b1", joinReq("b", h.joined("b0", kerr.MemberIDRequired).MemberID))
	if e := h.g.ValidateCommit("a-1", nil, 1); e != nil {
		t.Errorf("commit while preparing rebalance: %v", e)
	}
	h.join("a2", joinReq("a", "a-1"))
	if e := h.g.ValidateCommit("a-1", nil, 2); e != kerr.RebalanceInProgress {
		t.Errorf("commit while completing rebalance: %v", e)
	}
}

func TestSnapshotRestore(t *testing.T) {
	h := newHarness(t)
	h.stableOne()
	snap := h.g.Snapshot()
	g2 := New("g", h.g.cfg, h.now)
	g2.Restore(&snap, h.now)
	if g2.State() != Stable || g2.Generation() != 1 || g2.Leader() != "a-1" || g2.Protocol() != "range" {
		t.Fatalf("restored: %v %d %q %q", g2.State(), g2.Generation(), g2.Leader(), g2.Protocol())
	}
	if e := g2.Heartbeat(h.now, "a-1", nil, 1); e != nil {
		t.Fatalf("heartbeat after restore: %v", e)
	}
	var got *SyncResult
	g2.Sync(h.now, SyncRequest{MemberID: "a-1", Generation: 1}, func(r SyncResult) { got = &r })
	if got == nil || string(got.Assignment) != "A" {
		t.Fatalf("assignment after restore: %+v", got)
	}
	// A restored member that never comes back times out.
	g2.Tick(h.now.Add(11 * time.Second))
	if g2.State() != Empty {
		t.Fatalf("state after timeout: %v", g2.State())
	}
}

func TestExpire(t *testing.T) {
	h := newHarness(t)
	now := h.now
	h.g.Commit(TopicPartition{"t", 0}, Offset{Offset: 5, CommitTime: now.UnixMilli(), ExpireTime: -1})
	if len(h.g.Expire(now.Add(time.Hour), 2*time.Hour)) != 0 {
		t.Fatal("expired early")
	}
	if got := h.g.Expire(now.Add(2*time.Hour), 2*time.Hour); len(got) != 1 {
		t.Fatalf("simple group offsets not expired: %v", got)
	}
	h.stableOne()
	if len(h.g.Expire(now.Add(100*time.Hour), 2*time.Hour)) != 0 {
		t.Fatal("offsets of a group with members expired")
	}
}

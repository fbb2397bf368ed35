package group

import (
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// fakeTopics is a fixed metadata view.
type fakeTopics map[string]TopicInfo

func (f fakeTopics) Lookup(n string) (TopicInfo, bool) { t, ok := f[n]; return t, ok }
func (f fakeTopics) Names() []string {
	var out []string
	for n := range f {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

var (
	tidA = TopicID{1}
	tidB = TopicID{2}
)

func topicsAB() fakeTopics {
	return fakeTopics{"a": {Name: "a", ID: tidA, Partitions: 4}, "b": {Name: "b", ID: tidB, Partitions: 5}}
}

var ccfg = ConsumerConfig{SessionTimeout: 10 * time.Second, HeartbeatInterval: time.Second}

// chb is a consumer heartbeat helper bound to a group and clock.
type chb struct {
	t      *testing.T
	g      *Group
	now    time.Time
	topics fakeTopics
}

func newCHB(t *testing.T) *chb {
	h := newHarness(t)
	return &chb{t: t, g: h.g, now: h.now, topics: topicsAB()}
}

func (c *chb) join(id string, assignor string, topics ...string) ConsumerHeartbeatResult {
	c.t.Helper()
	req := ConsumerHeartbeat{MemberID: id, MemberEpoch: 0, ClientID: "c", RebalanceTimeout: 30 * time.Second, SubscribedTopics: topics, Owned: Assignment{}}
	if assignor != "" {
		req.ServerAssignor = &assignor
	}
	r := c.g.ConsumerHeartbeat(c.now, ccfg, c.topics, req, true)
	if r.Err != nil {
		c.t.Fatalf("join %s: %v", id, r.Err)
	}
	return r
}

func (c *chb) hb(id string, epoch int32, owned Assignment) ConsumerHeartbeatResult {
	return c.g.ConsumerHeartbeat(c.now, ccfg, c.topics, ConsumerHeartbeat{MemberID: id, MemberEpoch: epoch, RebalanceTimeout: -1, Owned: owned}, true)
}

func count(a Assignment) int {
	n := 0
	for _, ps := range a {
		n += len(ps)
	}
	return n
}

func TestConsumerIncrementalHandOver(t *testing.T) {
	c := newCHB(t)
	r1 := c.join("m1", "", "a")
	if r1.Epoch != 1 || count(r1.Assignment) != 4 || c.g.StateName() != "Stable" {
		t.Fatalf("first member: %+v state %s", r1, c.g.StateName())
	}
	owned1 := r1.Assignment

	r2 := c.join("m2", "", "a")
	if r2.Epoch != 2 || count(r2.Assignment) != 0 {
		t.Fatalf("second member must wait for m1 to release: %+v", r2)
	}
	if c.g.StateName() != "Reconciling" {
		t.Fatalf("state %s", c.g.StateName())
	}
	// m1 is told to revoke two partitions; its epoch stays until it does.
	rv := c.hb("m1", 1, owned1)
	if rv.Err != nil || rv.Epoch != 1 || count(rv.Assignment) != 2 {
		t.Fatalf("revocation: %+v", rv)
	}
	// While it still reports them, nothing moves.
	if r := c.hb("m2", 2, Assignment{}); count(r.Assignment) != 0 && r.Assignment != nil {
		t.Fatalf("m2 got partitions m1 still owns: %+v", r)
	}
	r := c.hb("m1", 1, rv.Assignment)
	if r.Epoch != 2 || r.Assignment == nil || count(r.Assignment) != 2 {
		t.Fatalf("m1 after revoking: %+v", r)
	}
	r = c.hb("m2", 2, Assignment{})
	if r.Epoch != 2 || count(r.Assignment) != 2 || intersects(r.Assignment, rv.Assignment) {
		t.Fatalf("m2 after release: %+v", r)
	}
	if c.g.StateName() != "Stable" {
		t.Fatalf("state %s", c.g.StateName())
	}
	// Unchanged heartbeats carry no assignment.
	if r := c.hb("m2", 2, nil); r.Err != nil || r.Assignment != nil {
		t.Fatalf("steady heartbeat: %+v", r)
	}
	for _, tc := range []struct {
		id    string
		epoch int32
		want  *kerr.Error
	}{
		{"m2", 5, kerr.FencedMemberEpoch},
		{"m2", 1, kerr.FencedMemberEpoch},
		{"zz", 2, kerr.UnknownMemberID},
		{"", 2, kerr.InvalidRequest},
	} {
		if r := c.hb(tc.id, tc.epoch, nil); r.Err != tc.want {
			t.Errorf("heartbeat %s@%d: %v, want %v", tc.id, tc.epoch, r.Err, tc.want)
		}
	}
	// Offsets: members commit with their epoch.
	if e := c.g.ValidateCommit("m2", nil, 2); e != nil {
		t.Errorf("commit: %v", e)
	}
	if e := c.g.ValidateCommit("m2", nil, 1); e != kerr.StaleMemberEpoch {
		t.Errorf("stale commit: %v", e)
	}
	if e := c.g.ValidateCommit("", nil, -1); e != kerr.UnknownMemberID {
		t.Errorf("admin commit to a live group: %v", e)
	}

	// m2 leaves; m1 takes everything back at the next epoch.
	if r := c.hb("m2", LeaveEpoch, nil); r.Err != nil || r.Epoch != LeaveEpoch {
		t.Fatalf("leave: %+v", r)
	}
	r = c.hb("m1", 2, nil)
	if r.Epoch != 3 || count(r.Assignment) != 4 {
		t.Fatalf("after leave: %+v", r)
	}
	// m1 goes silent: removed after the session timeout; the group is empty.
	c.now = c.now.Add(11 * time.Second)
	c.g.Tick(c.now)
	if c.g.StateName() != "Empty" || c.g.State() != Empty {
		t.Fatalf("after session timeout: %s", c.g.StateName())
	}
	if e := c.g.ValidateCommit("", nil, -1); e != nil {
		t.Errorf("admin commit to an empty group: %v", e)
	}
}

func TestConsumerRangeAssignor(t *testing.T) {
	c := newCHB(t)
	c.join("m1", AssignorRange, "b")
	c.join("m2", AssignorRange, "b")
	c.hb("m1", 1, Assignment{tidB: {0, 1, 2, 3, 4}})
	r1 := c.hb("m1", 1, Assignment{tidB: {0, 1, 2}})
	r2 := c.hb("m2", 2, Assignment{})
	if !slices.Equal(r1.Assignment[tidB], []int32{0, 1, 2}) || !slices.Equal(r2.Assignment[tidB], []int32{3, 4}) {
		t.Fatalf("range: m1 %v m2 %v", r1.Assignment, r2.Assignment)
	}
	d, ok := c.g.DescribeConsumer()
	if !ok || d.Assignor != AssignorRange || d.Epoch != 2 || len(d.Members) != 2 {
		t.Fatalf("describe: %+v", d)
	}
}

func TestConsumerAssignorErrorsAndRevokeTimeout(t *testing.T) {
	c := newCHB(t)
	bad := "sticky"
	r := c.g.ConsumerHeartbeat(c.now, ccfg, c.topics, ConsumerHeartbeat{MemberID: "m", SubscribedTopics: []string{"a"}, ServerAssignor: &bad}, true)
	if r.Err != kerr.UnsupportedAssignor {
		t.Fatalf("bad assignor: %v", r.Err)
	}
	r = c.g.ConsumerHeartbeat(c.now, ccfg, c.topics, ConsumerHeartbeat{MemberID: "m", RebalanceTimeout: time.Second}, true)
	if r.Err != kerr.InvalidRequest {
		t.Fatalf("join without subscription: %v", r.Err)
	}
	c.join("m1", "", "a", "b")
	c.join("m2", "", "a", "b")
	// m1 never revokes: after its rebalance timeout it is removed while m2
	// keeps heartbeating.
	for range 4 {
		c.now = c.now.Add(8 * time.Second)
		c.hb("m2", 2, Assignment{})
		c.g.Tick(c.now)
	}
	d, _ := c.g.DescribeConsumer()
	if len(d.Members) != 1 || d.Members[0].MemberID != "m2" {
		t.Fatalf("members after revoke timeout: %+v", d.Members)
	}
	if r := c.hb("m2", 2, Assignment{}); r.Epoch != 3 || count(r.Assignment) != 9 {
		t.Fatalf("m2 after m1 removal: %+v", r)
	}
}

func TestConsumerStaticRejoinAndProtocolExclusivity(t *testing.T) {
	c := newCHB(t)
	inst := "i1"
	req := ConsumerHeartbeat{MemberID: "old", InstanceID: &inst, RebalanceTimeout: time.Second, SubscribedTopics: []string{"a"}, Owned: Assignment{}}
	r := c.g.ConsumerHeartbeat(c.now, ccfg, c.topics, req, true)
	if r.Err != nil || count(r.Assignment) != 4 {
		t.Fatalf("static join: %+v", r)
	}
	req.MemberID = "new"
	if r := c.g.ConsumerHeartbeat(c.now, ccfg, c.topics, req, true); r.Err != kerr.UnreleasedInstanceID {
		t.Fatalf("second holder of an active instance: %v", r.Err)
	}
	if r := c.hb("old", StaticLeaveEpoch, nil); r.Err != nil {
		t.Fatalf("static leave: %v", r.Err)
	}
	r = c.g.ConsumerHeartbeat(c.now, ccfg, c.topics, req, true)
	if r.Err != nil || r.MemberID != "new" || r.Epoch != 1 || count(r.Assignment) != 4 {
		t.Fatalf("static rejoin keeps the assignment: %+v", r)
	}
	// A consumer group with members refuses classic joins; an empty one
	// converts.
	var jr *JoinResult
	c.g.Join(c.now, joinReq("x", ""), func(r JoinResult) { jr = &r })
	if jr == nil || jr.Err != kerr.InconsistentGroupProtocol {
		t.Fatalf("classic join into a consumer group: %+v", jr)
	}
	c.hb("new", LeaveEpoch, nil)
	jr = nil
	c.g.Join(c.now, joinReq("x", ""), func(r JoinResult) { jr = &r })
	if jr == nil || jr.Err != kerr.MemberIDRequired || c.g.IsConsumer() {
		t.Fatalf("classic join into an empty consumer group: %+v", jr)
	}

	h := newHarness(t)
	h.stableOne()
	if r := h.g.ConsumerHeartbeat(h.now, ccfg, topicsAB(), ConsumerHeartbeat{MemberID: "m", SubscribedTopics: []string{"a"}}, true); r.Err != kerr.GroupIDNotFound {
		t.Fatalf("consumer heartbeat into a live classic group: %v", r.Err)
	}
}

func TestUniformAssignorBalanceAndStickiness(t *testing.T) {
	subs := map[string][]TopicInfo{}
	ids := []string{"a", "b", "c"}
	for _, id := range ids {
		subs[id] = []TopicInfo{{Name: "x", ID: tidA, Partitions: 10}}
	}
	first := assignUniform(ids, subs, nil)
	for _, id := range ids {
		if n := count(first[id]); n < 3 || n > 4 {
			t.Fatalf("unbalanced: %s has %d", id, n)
		}
	}
	ids4 := append(ids, "d")
	subs["d"] = subs["a"]
	second := assignUniform(ids4, subs, first)
	moved := 0
	for _, id := range ids {
		for _, p := range first[id][tidA] {
			if !slices.Contains(second[id][tidA], p) {
				moved++
			}
		}
	}
	if n := count(second["d"]); n < 2 || n > 3 || moved != n {
		t.Fatalf("new member got %d, %d moved", n, moved)
	}
}

package group

import (
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
)

var testNow = time.Unix(1_000_000, 0)

// logImage replays records the way a coordinator load does: the last value
// per key wins, a tombstone deletes.
type logImage map[RecordKey][]byte

func (l logImage) apply(t *testing.T, recs []ConsumerRecord) {
	t.Helper()
	for _, r := range recs {
		k, err := ParseRecordKey(r.Key)
		if err != nil {
			t.Fatalf("written key %x: %v", r.Key, err)
		}
		if r.Value == nil {
			if _, ok := l[k]; !ok {
				t.Errorf("tombstone for %+v, which was never written", k)
			}
			delete(l, k)
			continue
		}
		if _, _, err := decodeConsumerRecord(r.Key, r.Value); err != nil {
			t.Fatalf("written value of %+v: %v", k, err)
		}
		l[k] = r.Value
	}
}

func types(recs []ConsumerRecord) []int16 {
	var out []int16
	for _, r := range recs {
		k, _ := ParseRecordKey(r.Key)
		out = append(out, k.Type)
	}
	return out
}

// restored rebuilds the group from the log image, as after a restart.
func restored(t *testing.T, l logImage, now time.Time) *Group {
	t.Helper()
	g := New("g", DefaultConfig(), now)
	if !g.RestoreConsumer(l, now, ccfg.SessionTimeout) {
		t.Fatal("restore refused the image")
	}
	return g
}

// TestConsumerGroupPersistence drives a consumer group through joins, a
// hand-over, a leave and a static member, replaying after every step what
// it wrote into a fresh group: the restored group must describe exactly as
// the live one, answer its members' next heartbeats without fencing them
// or bumping the group epoch, and write nothing new for an unchanged state.
func TestConsumerGroupPersistence(t *testing.T) {
	c := newCHB(t)
	log := logImage{}
	check := func(step string) {
		t.Helper()
		log.apply(t, c.g.ConsumerRecords())
		if again := c.g.ConsumerRecords(); len(again) != 0 {
			t.Errorf("%s: records for an unchanged group: %v", step, types(again))
		}
		r := restored(t, log, c.now)
		live, _ := c.g.DescribeConsumer()
		back, _ := r.DescribeConsumer()
		if !reflect.DeepEqual(live, back) {
			t.Errorf("%s: live %+v\nrestored %+v", step, live, back)
		}
		if r.Type() != "consumer" || r.StateName() != c.g.StateName() {
			t.Errorf("%s: restored type %s state %s, live state %s", step, r.Type(), r.StateName(), c.g.StateName())
		}
		// The restored group writes nothing until something changes.
		r.imageStale = true
		if recs := r.ConsumerRecords(); len(recs) != 0 {
			t.Errorf("%s: restored group rewrites %v", step, types(recs))
		}
	}

	r1 := c.join("m1", "", "a", "b")
	check("first join")
	c.hb("m1", r1.Epoch, r1.Assignment)
	check("m1 stable")

	c.now = c.now.Add(time.Second)
	r2 := c.join("m2", "", "a", "b")
	check("second join")
	// m1 must give partitions up: after a restart in the middle of that,
	// its heartbeat with the epoch it has is accepted.
	h1 := c.hb("m1", r1.Epoch, r1.Assignment)
	check("m1 revoking")
	mid := restored(t, log, c.now)
	if res := mid.ConsumerHeartbeat(c.now, ccfg, c.topics, ConsumerHeartbeat{MemberID: "m1", MemberEpoch: h1.Epoch, RebalanceTimeout: -1}, true); res.Err != nil {
		t.Fatalf("restored m1 heartbeat at epoch %d: %v", h1.Epoch, res.Err)
	}
	d0, _ := c.g.DescribeConsumer()
	if res := mid.ConsumerHeartbeat(c.now, ccfg, c.topics, ConsumerHeartbeat{MemberID: "m2", MemberEpoch: r2.Epoch, RebalanceTimeout: -1}, true); res.Err != nil || res.Epoch != r2.Epoch {
		t.Fatalf("restored m2 heartbeat: %+v", res)
	}
	if d, _ := mid.DescribeConsumer(); d.Epoch != d0.Epoch {
		t.Errorf("restored group epoch moved from %d to %d on a plain heartbeat", d0.Epoch, d.Epoch)
	}

	// Reconcile both to stable.
	owned1 := h1.Assignment
	for range 4 {
		if h := c.hb("m1", c.memberEpoch("m1"), owned1); h.Assignment != nil {
			owned1 = h.Assignment
		}
		c.hb("m2", c.memberEpoch("m2"), c.assigned("m2"))
	}
	if c.g.StateName() != "Stable" {
		t.Fatalf("not stable: %s", c.g.StateName())
	}
	check("both stable")

	// m2 leaves: its three records are tombstoned, the epoch record rewritten.
	c.g.ConsumerHeartbeat(c.now, ccfg, c.topics, ConsumerHeartbeat{MemberID: "m2", MemberEpoch: LeaveEpoch}, true)
	recs := c.g.ConsumerRecords()
	tombs := 0
	for _, r := range recs {
		if r.Value == nil {
			tombs++
		}
	}
	if tombs != 3 {
		t.Errorf("leave wrote %d tombstones (%v), want 3", tombs, types(recs))
	}
	log.apply(t, recs)
	c.g.imageStale = true
	check("m2 left")

	// A static member that leaves temporarily keeps its place.
	inst := "i-1"
	req := ConsumerHeartbeat{MemberID: "s1", MemberEpoch: 0, InstanceID: &inst, ClientID: "c", RebalanceTimeout: time.Second, SubscribedTopics: []string{"a"}, Owned: Assignment{}}
	c.g.ConsumerHeartbeat(c.now, ccfg, c.topics, req, true)
	check("static join")
	c.g.ConsumerHeartbeat(c.now, ccfg, c.topics, ConsumerHeartbeat{MemberID: "s1", MemberEpoch: StaticLeaveEpoch, InstanceID: &inst}, true)
	check("static leave")

	// Deletion tombstones every record written.
	c.g.ConsumerHeartbeat(c.now, ccfg, c.topics, ConsumerHeartbeat{MemberID: "m1", MemberEpoch: LeaveEpoch}, true)
	c.g.tickConsumer(c.now.Add(time.Hour))
	log.apply(t, c.g.ConsumerRecords())
	log.apply(t, c.g.ConsumerTombstones())
	if len(log) != 0 {
		t.Errorf("records left after deletion: %d", len(log))
	}
}

// TestConsumerGroupPersistenceConversion checks that a consumer group that
// turns classic tombstones its consumer records, and that a Dead group (its
// coordinator moved) writes nothing.
func TestConsumerGroupPersistenceConversion(t *testing.T) {
	c := newCHB(t)
	log := logImage{}
	r := c.join("m1", "", "a")
	log.apply(t, c.g.ConsumerRecords())
	c.g.ConsumerHeartbeat(c.now, ccfg, c.topics, ConsumerHeartbeat{MemberID: "m1", MemberEpoch: LeaveEpoch}, true)
	log.apply(t, c.g.ConsumerRecords())
	if !c.g.toClassic() {
		t.Fatal("empty consumer group did not convert")
	}
	log.apply(t, c.g.ConsumerRecords())
	if len(log) != 0 {
		t.Errorf("records left after conversion: %d", len(log))
	}

	d := newCHB(t)
	d.join("m1", "", "a")
	before := d.g.ConsumerRecords()
	d.g.MarkDead(d.now)
	d.g.imageStale = true
	if recs := d.g.ConsumerRecords(); len(recs) != 0 || len(before) == 0 {
		t.Errorf("dead group wrote %v (before: %d records)", types(recs), len(before))
	}
	_ = r
}

// TestRestoreConsumerSanitizes restores records that break the one-owner
// rule or lack parts: the restore keeps the first owner, fills missing
// assignment epochs, and refuses an image without group metadata.
func TestRestoreConsumerSanitizes(t *testing.T) {
	mk := func(typ int16, m string) RecordKey { return RecordKey{Type: typ, Group: "g", Member: m} }
	member := (&ConsumerGroupMemberMetadataValue{ClientID: "c", SubscribedTopics: []string{"a"}, RebalanceTimeoutMs: 1000}).AppendTo(nil)
	cur := (&ConsumerGroupCurrentAssignmentValue{MemberEpoch: 2, PreviousMemberEpoch: 1, Assigned: Assignment{tidA: {0, 1}}, Revoking: Assignment{}}).AppendTo(nil)
	img := map[RecordKey][]byte{
		mk(RecordConsumerGroupMetadata, ""):            (&ConsumerGroupMetadataValue{Epoch: 2}).AppendTo(nil),
		mk(RecordConsumerGroupMemberMetadata, "m1"):    member,
		mk(RecordConsumerGroupMemberMetadata, "m2"):    member,
		mk(RecordConsumerGroupCurrentAssignment, "m1"): cur,
		mk(RecordConsumerGroupCurrentAssignment, "m2"): cur,
		mk(RecordConsumerGroupTargetMember, "gone"):    (&ConsumerGroupTargetMemberValue{Assignment: Assignment{tidA: {3}}}).AppendTo(nil),
		mk(RecordConsumerGroupMemberMetadata, "bad"):   {0, 0, 1},
	}
	g := New("g", DefaultConfig(), testNow)
	if !g.RestoreConsumer(img, testNow, ccfg.SessionTimeout) {
		t.Fatal("restore refused")
	}
	d, _ := g.DescribeConsumer()
	if len(d.Members) != 2 || count(d.Members[0].Assigned) != 2 || count(d.Members[1].Assigned) != 0 {
		t.Fatalf("restored members: %+v", d.Members)
	}
	if !g.CommitAllowed("m1", 2, tidA, 0) {
		t.Error("missing assignment epochs not filled with the member epoch")
	}
	if len(g.consumer.target) != 0 {
		t.Errorf("target of a member without metadata restored: %v", g.consumer.target)
	}
	delete(img, mk(RecordConsumerGroupMetadata, ""))
	if New("g", DefaultConfig(), testNow).RestoreConsumer(img, testNow, time.Second) {
		t.Error("restored without group metadata")
	}
	// Sessions restart at the restore and expire after the timeout.
	g.Tick(testNow.Add(ccfg.SessionTimeout))
	if g.StateName() != "Empty" {
		t.Errorf("members outlived their sessions: %s", g.StateName())
	}
	recs := g.ConsumerRecords()
	if !slices.Contains(types(recs), RecordConsumerGroupMetadata) {
		t.Errorf("expiry did not rewrite the group epoch: %v", types(recs))
	}
	// The records the restore could not use are tombstoned with the rest.
	log := logImage(maps.Clone(img))
	log[mk(RecordConsumerGroupMetadata, "")] = (&ConsumerGroupMetadataValue{Epoch: 2}).AppendTo(nil)
	log.apply(t, recs)
	for k := range log {
		if k.Member != "" {
			t.Errorf("record %+v left after every member expired", k)
		}
	}
}

// memberEpoch and assigned read a member's state for the test driver.
func (c *chb) memberEpoch(id string) int32 { return c.g.consumer.members[id].epoch }
func (c *chb) assigned(id string) Assignment {
	return cloneAssignment(c.g.consumer.members[id].assigned)
}

// TestConsumerRecordsLost checks that changes whose append failed are
// returned again by the next ConsumerRecords, tombstones included.
func TestConsumerRecordsLost(t *testing.T) {
	c := newCHB(t)
	log := logImage{}
	c.join("m1", "", "a")
	c.join("m2", "", "a")
	log.apply(t, c.g.ConsumerRecords())
	c.g.ConsumerHeartbeat(c.now, ccfg, c.topics, ConsumerHeartbeat{MemberID: "m2", MemberEpoch: LeaveEpoch}, true)
	lost := c.g.ConsumerRecords()
	c.g.ConsumerRecordsLost()
	again := c.g.ConsumerRecords()
	if !reflect.DeepEqual(lost, again) || len(again) == 0 {
		t.Fatalf("after a lost append: %v, first %v", types(again), types(lost))
	}
	log.apply(t, again)
	live, _ := c.g.DescribeConsumer()
	back, _ := restored(t, log, c.now).DescribeConsumer()
	if !reflect.DeepEqual(live, back) {
		t.Errorf("live %+v\nrestored %+v", live, back)
	}
}

// TestConsumerPersistenceRandom drives a consumer group with seeded random
// joins, heartbeats (reporting what the member owns), leaves, static leaves
// and returns, and session expiries. After every step it appends what
// ConsumerRecords returned to a log image and checks that a forced full
// comparison finds nothing more to write (the per-member shortcut missed
// nothing), and that the group restored from the image describes exactly as
// the live one.
func TestConsumerPersistenceRandom(t *testing.T) {
	for seed := range int64(4) {
		rng := rand.New(rand.NewPCG(uint64(seed), 7))
		c := newCHB(t)
		log := logImage{}
		owned := map[string]Assignment{}
		epochs := map[string]int32{}
		ids := []string{"m0", "m1", "m2", "m3"}
		inst := map[string]*string{"m3": sp("static-3")}
		for step := range 300 {
			id := ids[rng.IntN(len(ids))]
			switch op := rng.IntN(10); {
			case op == 0: // leave (a static member sometimes only temporarily)
				e := LeaveEpoch
				if inst[id] != nil && rng.IntN(2) == 0 {
					e = StaticLeaveEpoch
				}
				c.g.ConsumerHeartbeat(c.now, ccfg, c.topics, ConsumerHeartbeat{MemberID: id, MemberEpoch: e, InstanceID: inst[id]}, true)
				delete(epochs, id)
				delete(owned, id)
			case op == 1: // time passes: silent members expire
				c.now = c.now.Add(time.Duration(rng.IntN(6)) * time.Second)
				c.g.Tick(c.now)
			case op < 4 || epochs[id] == 0: // join (again)
				topics := [][]string{{"a"}, {"b"}, {"a", "b"}}[rng.IntN(3)]
				r := c.g.ConsumerHeartbeat(c.now, ccfg, c.topics, ConsumerHeartbeat{MemberID: id, MemberEpoch: 0, InstanceID: inst[id],
					ClientID: "c", RebalanceTimeout: 5 * time.Second, SubscribedTopics: topics, Owned: Assignment{}}, true)
				if r.Err == nil {
					epochs[id] = r.Epoch
					owned[id] = r.Assignment
				}
			default: // heartbeat reporting what the member owns
				r := c.g.ConsumerHeartbeat(c.now, ccfg, c.topics, ConsumerHeartbeat{MemberID: id, MemberEpoch: epochs[id],
					RebalanceTimeout: -1, Owned: owned[id]}, true)
				if r.Err != nil {
					delete(epochs, id)
					delete(owned, id)
					break
				}
				epochs[id] = r.Epoch
				if r.Assignment != nil {
					owned[id] = r.Assignment
				}
			}
			log.apply(t, c.g.ConsumerRecords())
			c.g.imageStale = true
			if missed := c.g.ConsumerRecords(); len(missed) != 0 {
				t.Fatalf("seed %d step %d: the full comparison still finds %v", seed, step, types(missed))
			}
			if len(log) == 0 {
				continue
			}
			live, _ := c.g.DescribeConsumer()
			back, _ := restored(t, log, c.now).DescribeConsumer()
			if !reflect.DeepEqual(live, back) {
				t.Fatalf("seed %d step %d:\nlive     %+v\nrestored %+v", seed, step, live, back)
			}
		}
	}
}

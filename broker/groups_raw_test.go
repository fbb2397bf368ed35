package broker

import (
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/broker/group"
)

// rawConn sends hand-built requests at exactly the version asked for
// (a kgo client would negotiate its own).
type rawConn struct {
	nc   net.Conn
	corr int32
}

func rawClient(t *testing.T, b *Broker) *rawConn { return &rawConn{nc: dial(t, b)} }

// send issues req at version v and returns the decoded response.
func send[R kmsg.Response](t *testing.T, c *rawConn, req kmsg.Request, v int16) R {
	t.Helper()
	c.corr++
	if _, err := c.nc.Write(frameOf(req, v, c.corr)); err != nil {
		t.Fatalf("%s v%d: write: %v", kmsg.NameForKey(req.Key()), v, err)
	}
	body := readResponse(t, c.nc, c.corr)
	resp := req.ResponseKind()
	resp.SetVersion(v)
	if resp.IsFlexible() && req.Key() != 18 {
		body = body[1:] // empty tagged fields of response header v1
	}
	if err := resp.ReadFrom(body); err != nil {
		t.Fatalf("%s v%d: decode: %v", kmsg.NameForKey(req.Key()), v, err)
	}
	return resp.(R)
}

func joinReqRaw(group, member string) *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Group, req.MemberID = group, member
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 10000, 10000
	req.ProtocolType = "consumer"
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name, p.Metadata = "range", []byte{0, 0, 0, 0, 0, 1, 0, 1, 't', 0, 0, 0, 0}
	req.Protocols = append(req.Protocols, p)
	return req
}

// joinRawMember joins group as a single dynamic member through
// MEMBER_ID_REQUIRED, syncs, and returns its member id and generation.
func joinRawMember(t *testing.T, b *Broker, group string) (string, int32) {
	t.Helper()
	cl := rawClient(t, b)
	r := send[*kmsg.JoinGroupResponse](t, cl, joinReqRaw(group, ""), 9)
	if r.ErrorCode != kerr.MemberIDRequired.Code || r.MemberID == "" {
		t.Fatalf("first join: code %d member %q", r.ErrorCode, r.MemberID)
	}
	r = send[*kmsg.JoinGroupResponse](t, cl, joinReqRaw(group, r.MemberID), 9)
	if r.ErrorCode != 0 || r.LeaderID != r.MemberID || len(r.Members) != 1 {
		t.Fatalf("second join: %+v", r)
	}
	sreq := kmsg.NewPtrSyncGroupRequest()
	sreq.Group, sreq.MemberID, sreq.Generation = group, r.MemberID, r.Generation
	sreq.ProtocolType, sreq.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
	a := kmsg.NewSyncGroupRequestGroupAssignment()
	a.MemberID, a.MemberAssignment = r.MemberID, []byte("assignment")
	sreq.GroupAssignment = append(sreq.GroupAssignment, a)
	s := send[*kmsg.SyncGroupResponse](t, cl, sreq, 5)
	if s.ErrorCode != 0 || string(s.MemberAssignment) != "assignment" {
		t.Fatalf("sync: %+v", s)
	}
	return r.MemberID, r.Generation
}

// findCoordinator creates the offsets topic, as a client's first
// FindCoordinator does.
func findCoordinator(t *testing.T, cl *rawConn) {
	t.Helper()
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorKey = "any"
	if r := send[*kmsg.FindCoordinatorResponse](t, cl, req, 3); r.ErrorCode != 0 {
		t.Fatalf("find coordinator: %d", r.ErrorCode)
	}
}

func heartbeatRaw(t *testing.T, b *Broker, group, member string, gen int32) int16 {
	t.Helper()
	req := kmsg.NewPtrHeartbeatRequest()
	req.Group, req.MemberID, req.Generation = group, member, gen
	return send[*kmsg.HeartbeatResponse](t, rawClient(t, b), req, 4).ErrorCode
}

func TestFindCoordinator(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, groupTestConfig)
	cl := rawClient(t, b)
	for _, v := range []int16{0, 1, 2, 3} {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorKey = "g"
		r := send[*kmsg.FindCoordinatorResponse](t, cl, req, v)
		if r.ErrorCode != 0 || r.NodeID != 1 || r.Port == 0 {
			t.Errorf("v%d: %+v", v, r)
		}
	}
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorKeys = []string{"a", "b"}
	r := send[*kmsg.FindCoordinatorResponse](t, cl, req, 6)
	if len(r.Coordinators) != 2 || r.Coordinators[0].ErrorCode != 0 || r.Coordinators[1].Key != "b" {
		t.Errorf("v6 batched: %+v", r.Coordinators)
	}
	req.CoordinatorType = 1
	r = send[*kmsg.FindCoordinatorResponse](t, cl, req, 6)
	// Transactional ids are coordinated by the leader of their
	// __transaction_state partition: this broker.
	if r.Coordinators[0].ErrorCode != 0 || r.Coordinators[0].NodeID != 1 || r.Coordinators[0].Port == 0 {
		t.Errorf("transaction key: %+v", r.Coordinators[0])
	}
	req.CoordinatorType = 7
	r = send[*kmsg.FindCoordinatorResponse](t, cl, req, 6)
	if r.Coordinators[0].ErrorCode != kerr.InvalidRequest.Code {
		t.Errorf("bad key type: %+v", r.Coordinators[0])
	}
	// The offsets topic now exists, is internal, and has 5 partitions.
	mreq := kmsg.NewPtrMetadataRequest()
	m := send[*kmsg.MetadataResponse](t, cl, mreq, 12)
	found := false
	for _, mt := range m.Topics {
		if mt.Topic != nil && *mt.Topic == offsetsTopic {
			found = mt.IsInternal && len(mt.Partitions) == 5
		}
	}
	if !found {
		t.Errorf("metadata does not list %s as internal with 5 partitions", offsetsTopic)
	}
}

func TestGroupPartitionJavaHash(t *testing.T) {
	for _, tc := range []struct {
		id   string
		n    int
		want int32
	}{
		// Values from Java: abs("group".hashCode()) % 50 etc.
		{"group", 50, 98629247 % 50},
		{"", 50, 0},
		{"polygenelubricants", 50, 0}, // hashCode is Integer.MIN_VALUE
		{"é", 50, 233 % 50},
	} {
		if got := groupPartition(tc.id, tc.n); got != tc.want {
			t.Errorf("groupPartition(%q) = %d, want %d", tc.id, got, tc.want)
		}
	}
}

func TestGroupErrorsOverTheWire(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, groupTestConfig)
	adm := newAdmin(t, b)
	createTopic(t, adm, "t", 2, nil)
	cl := rawClient(t, b)
	if j := send[*kmsg.JoinGroupResponse](t, cl, joinReqRaw("old", ""), 3); j.ErrorCode != kerr.NotCoordinator.Code {
		t.Errorf("join before the offsets topic exists: %d", j.ErrorCode)
	}
	findCoordinator(t, cl)

	// JoinGroup v3 needs no member id round trip; v0 uses the session
	// timeout as rebalance timeout.
	j := send[*kmsg.JoinGroupResponse](t, cl, joinReqRaw("old", ""), 3)
	if j.ErrorCode != 0 || j.MemberID == "" || j.Generation != 1 {
		t.Errorf("join v3: %+v", j)
	}
	jr := joinReqRaw("g0", "")
	jr.SessionTimeoutMillis = 100
	if j := send[*kmsg.JoinGroupResponse](t, cl, jr, 9); j.ErrorCode != kerr.InvalidSessionTimeout.Code {
		t.Errorf("short session: %d", j.ErrorCode)
	}
	if j := send[*kmsg.JoinGroupResponse](t, cl, joinReqRaw("", ""), 9); j.ErrorCode != kerr.InvalidGroupID.Code {
		t.Errorf("empty group id: %d", j.ErrorCode)
	}
	if j := send[*kmsg.JoinGroupResponse](t, cl, joinReqRaw("g0", "nobody"), 9); j.ErrorCode != kerr.UnknownMemberID.Code {
		t.Errorf("unknown member join: %d", j.ErrorCode)
	}

	member, gen := joinRawMember(t, b, "g1")
	for _, tc := range []struct {
		member string
		gen    int32
		want   int16
	}{
		{member, gen, 0},
		{member, gen + 1, kerr.IllegalGeneration.Code},
		{"nobody", gen, kerr.UnknownMemberID.Code},
	} {
		if code := heartbeatRaw(t, b, "g1", tc.member, tc.gen); code != tc.want {
			t.Errorf("heartbeat %s/%d: %d, want %d", tc.member, tc.gen, code, tc.want)
		}
	}
	if code := heartbeatRaw(t, b, "no-such-group", member, gen); code != kerr.UnknownMemberID.Code {
		t.Errorf("heartbeat unknown group: %d", code)
	}

	// OffsetCommit: member commits, stale generation, simple commit to a
	// non-empty group.
	commit := func(v int16, member string, gen int32, off int64) int16 {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group, req.MemberID, req.Generation = "g1", member, gen
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = "t"
		if v >= 10 {
			rt.TopicID = b.node.State().Topics["t"].ID
		}
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = 0, off, 3, kmsg.StringPtr("meta")
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return send[*kmsg.OffsetCommitResponse](t, cl, req, v).Topics[0].Partitions[0].ErrorCode
	}
	if c := commit(8, member, gen, 7); c != 0 {
		t.Errorf("member commit v8: %d", c)
	}
	if c := commit(10, member, gen, 8); c != 0 {
		t.Errorf("member commit v10: %d", c)
	}
	if c := commit(8, member, gen-1, 9); c != kerr.IllegalGeneration.Code {
		t.Errorf("stale commit: %d", c)
	}
	if c := commit(8, "", -1, 9); c != kerr.UnknownMemberID.Code {
		t.Errorf("simple commit to live group: %d", c)
	}

	// OffsetFetch in every request shape.
	f1 := kmsg.NewPtrOffsetFetchRequest()
	f1.Group = "g1"
	ft := kmsg.NewOffsetFetchRequestTopic()
	ft.Topic, ft.Partitions = "t", []int32{0, 1}
	f1.Topics = append(f1.Topics, ft)
	for _, v := range []int16{1, 5, 7} {
		r := send[*kmsg.OffsetFetchResponse](t, cl, f1, v)
		p := r.Topics[0].Partitions
		wantEpoch := int32(3)
		if v < 5 {
			wantEpoch = -1 // not in the response before v5
		}
		if r.ErrorCode != 0 || p[0].Offset != 8 || (v >= 5 && p[0].LeaderEpoch != wantEpoch) || *p[0].Metadata != "meta" || p[1].Offset != -1 {
			t.Errorf("offset fetch v%d: %+v", v, r.Topics)
		}
	}
	f8 := kmsg.NewPtrOffsetFetchRequest()
	g := kmsg.NewOffsetFetchRequestGroup()
	g.Group = "g1" // Topics nil: everything
	f8.Groups = append(f8.Groups, g)
	g2 := kmsg.NewOffsetFetchRequestGroup()
	g2.Group = "missing"
	f8.Groups = append(f8.Groups, g2)
	r8 := send[*kmsg.OffsetFetchResponse](t, cl, f8, 8)
	if len(r8.Groups) != 2 || len(r8.Groups[0].Topics) != 1 || r8.Groups[0].Topics[0].Partitions[0].Offset != 8 || len(r8.Groups[1].Topics) != 0 {
		t.Errorf("offset fetch v8: %+v", r8.Groups)
	}
	r10 := send[*kmsg.OffsetFetchResponse](t, cl, f8, 10)
	if r10.Groups[0].Topics[0].TopicID != b.node.State().Topics["t"].ID {
		t.Errorf("offset fetch v10 topic id: %+v", r10.Groups[0].Topics)
	}

	// Group listing and description.
	lg := send[*kmsg.ListGroupsResponse](t, cl, kmsg.NewPtrListGroupsRequest(), 5)
	states := map[string]string{}
	for _, g := range lg.Groups {
		states[g.Group] = g.GroupState
		if g.GroupType != "classic" {
			t.Errorf("group type %q", g.GroupType)
		}
	}
	if states["g1"] != "Stable" || states["old"] != "CompletingRebalance" {
		t.Errorf("list groups: %v", states)
	}
	lreq := kmsg.NewPtrListGroupsRequest()
	lreq.StatesFilter = []string{"stable"}
	if lg := send[*kmsg.ListGroupsResponse](t, cl, lreq, 4); len(lg.Groups) != 1 || lg.Groups[0].Group != "g1" {
		t.Errorf("list stable groups: %+v", lg.Groups)
	}
	lreq.StatesFilter, lreq.TypesFilter = nil, []string{"consumer"}
	if lg := send[*kmsg.ListGroupsResponse](t, cl, lreq, 5); len(lg.Groups) != 0 {
		t.Errorf("list consumer-type groups: %+v", lg.Groups)
	}
	dreq := kmsg.NewPtrDescribeGroupsRequest()
	dreq.Groups = []string{"g1", "missing"}
	d := send[*kmsg.DescribeGroupsResponse](t, cl, dreq, 6)
	if d.Groups[0].State != "Stable" || d.Groups[0].Protocol != "range" || string(d.Groups[0].Members[0].MemberAssignment) != "assignment" || d.Groups[1].ErrorCode != kerr.GroupIDNotFound.Code {
		t.Errorf("describe v6: %+v", d.Groups)
	}
	if d := send[*kmsg.DescribeGroupsResponse](t, cl, dreq, 5); d.Groups[1].ErrorCode != 0 || d.Groups[1].State != "Dead" {
		t.Errorf("describe v5 missing group: %+v", d.Groups[1])
	}

	// OffsetDelete refuses a subscribed topic; DeleteGroups a live group.
	odreq := kmsg.NewPtrOffsetDeleteRequest()
	odreq.Group = "g1"
	odt := kmsg.NewOffsetDeleteRequestTopic()
	odt.Topic = "t"
	odp := kmsg.NewOffsetDeleteRequestTopicPartition()
	odt.Partitions = append(odt.Partitions, odp)
	odreq.Topics = append(odreq.Topics, odt)
	if r := send[*kmsg.OffsetDeleteResponse](t, cl, odreq, 0); r.Topics[0].Partitions[0].ErrorCode != kerr.GroupSubscribedToTopic.Code {
		t.Errorf("offset delete of subscribed topic: %+v", r)
	}
	delReq := kmsg.NewPtrDeleteGroupsRequest()
	delReq.Groups = []string{"g1", "missing"}
	del := send[*kmsg.DeleteGroupsResponse](t, cl, delReq, 2)
	if del.Groups[0].ErrorCode != kerr.NonEmptyGroup.Code || del.Groups[1].ErrorCode != kerr.GroupIDNotFound.Code {
		t.Errorf("delete groups: %+v", del.Groups)
	}

	// LeaveGroup v3 batch: one real member, one unknown.
	lv := kmsg.NewPtrLeaveGroupRequest()
	lv.Group = "g1"
	m1 := kmsg.NewLeaveGroupRequestMember()
	m1.MemberID = member
	m2 := kmsg.NewLeaveGroupRequestMember()
	m2.MemberID = "nobody"
	lv.Members = append(lv.Members, m1, m2)
	lr := send[*kmsg.LeaveGroupResponse](t, cl, lv, 5)
	if lr.ErrorCode != 0 || lr.Members[0].ErrorCode != 0 || lr.Members[1].ErrorCode != kerr.UnknownMemberID.Code {
		t.Errorf("leave v5: %+v", lr)
	}
	// Now empty: offsets can be deleted, then the group.
	if r := send[*kmsg.OffsetDeleteResponse](t, cl, odreq, 0); r.ErrorCode != 0 || r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Errorf("offset delete of empty group: %+v", r)
	}
	if r := send[*kmsg.OffsetFetchResponse](t, cl, f1, 7); r.Topics[0].Partitions[0].Offset != -1 {
		t.Errorf("offset after delete: %+v", r.Topics[0].Partitions[0])
	}
	delReq.Groups = []string{"g1"}
	if del := send[*kmsg.DeleteGroupsResponse](t, cl, delReq, 2); del.Groups[0].ErrorCode != 0 {
		t.Errorf("delete empty group: %+v", del.Groups)
	}
	if d := send[*kmsg.DescribeGroupsResponse](t, cl, dreq, 6); d.Groups[0].ErrorCode != kerr.GroupIDNotFound.Code {
		t.Errorf("deleted group still described: %+v", d.Groups[0])
	}
}

// TestOffsetsExpire commits as a simple consumer with a short
// offsets.retention and waits (bounded) for the offset and the group to
// disappear, as the expiry pass writes tombstones.
func TestOffsetsExpire(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, func(c *Config) {
		groupTestConfig(c)
		c.OffsetsRetention = 300 * time.Millisecond
		c.OffsetsRetentionCheckInterval = 50 * time.Millisecond
	})
	adm := newAdmin(t, b)
	createTopic(t, adm, "t", 1, nil)
	if _, err := adm.CommitOffsets(testCtx(t), "expiring", kadm.OffsetsFromRecords(kgo.Record{Topic: "t", Partition: 0, Offset: 9})); err != nil {
		t.Fatalf("commit: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		lg, err := adm.ListGroups(testCtx(t))
		if err != nil {
			t.Fatalf("list groups: %v", err)
		}
		if _, ok := lg["expiring"]; !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("group with expired offsets still listed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	offs, err := adm.FetchOffsets(testCtx(t), "expiring")
	if err != nil {
		t.Fatalf("fetch offsets: %v", err)
	}
	if o, ok := offs.Lookup("t", 0); ok && o.At >= 0 {
		t.Errorf("expired offset still served: %+v", o)
	}
}

// TestOffsetsOfDeletedTopicRemoved checks that deleting a topic removes
// the committed offsets on it, so a new topic of the same name starts
// without them.
func TestOffsetsOfDeletedTopicRemoved(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, groupTestConfig)
	adm := newAdmin(t, b)
	createTopic(t, adm, "gone", 2, nil)
	createTopic(t, adm, "kept", 1, nil)
	if _, err := adm.CommitOffsets(testCtx(t), "g", kadm.OffsetsFromRecords(
		kgo.Record{Topic: "gone", Partition: 1, Offset: 4}, kgo.Record{Topic: "kept", Partition: 0, Offset: 6})); err != nil {
		t.Fatalf("commit: %v", err)
	}
	if _, err := adm.DeleteTopics(testCtx(t), "gone"); err != nil {
		t.Fatalf("delete topic: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		offs, err := adm.FetchOffsets(testCtx(t), "g")
		if err != nil {
			t.Fatalf("fetch offsets: %v", err)
		}
		_, stillGone := offs.Lookup("gone", 1)
		kept, ok := offs.Lookup("kept", 0)
		if !ok || kept.At != 7 {
			t.Fatalf("offset of the surviving topic: %+v %v", kept, ok)
		}
		if !stillGone {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("offsets of the deleted topic are still served")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPurgeKeepsOffsetsOfNewTopics commits an offset to a topic created
// after a coordinator tick read the cluster state it purges deleted topics'
// offsets against, and before the tick reaches the group's shard: the
// offset must survive (the tick must not take the new topic for a deleted
// one).
func TestPurgeKeepsOffsetsOfNewTopics(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, groupTestConfig)
	adm := newAdmin(t, b)
	ctx := testCtx(t)
	createTopic(t, adm, "old", 1, nil)
	if _, err := adm.CommitOffsets(ctx, "g", kadm.OffsetsFromRecords(kgo.Record{Topic: "old", Partition: 0, Offset: 2})); err != nil {
		t.Fatalf("commit: %v", err)
	}
	hooked := make(chan error, 1)
	var once sync.Once
	hook := func(purge bool) {
		if !purge {
			return
		}
		once.Do(func() {
			_, err := adm.CreateTopic(ctx, 1, 1, nil, "fresh")
			if err == nil {
				_, err = adm.CommitOffsets(ctx, "g", kadm.OffsetsFromRecords(kgo.Record{Topic: "fresh", Partition: 0, Offset: 6}))
			}
			hooked <- err
		})
	}
	b.groups.tickHook.Store(&hook)
	defer b.groups.tickHook.Store(nil)
	createTopic(t, adm, "trigger", 1, nil) // a state change: the next tick purges
	if err := <-hooked; err != nil {
		t.Fatalf("create and commit during the tick: %v", err)
	}
	waitTick(t, b) // the hooked tick has finished its purge
	offs, err := adm.FetchOffsets(ctx, "g")
	if err != nil {
		t.Fatalf("fetch offsets: %v", err)
	}
	if o, ok := offs.Lookup("fresh", 0); !ok || o.At != 7 {
		t.Fatalf("offset committed to the new topic: %+v %v, want 7", o, ok)
	}
}

// waitTick returns once a coordinator tick has started after the call, so
// every earlier tick has finished. It replaces the tick hook.
func waitTick(t *testing.T, b *Broker) {
	t.Helper()
	ticked := make(chan struct{})
	var once sync.Once
	hook := func(bool) { once.Do(func() { close(ticked) }) }
	b.groups.tickHook.Store(&hook)
	defer b.groups.tickHook.Store(nil)
	select {
	case <-ticked:
	case <-time.After(10 * time.Second):
		t.Fatal("no coordinator tick in 10 s")
	}
}

// waitStateSettled returns once b's cluster state has stopped changing for
// 100 ms: a deletion's follow-up commands are applied.
func waitStateSettled(b *Broker) {
	for v := uint64(0); v != b.node.State().Version; {
		v = b.node.State().Version
		time.Sleep(100 * time.Millisecond)
	}
}

// holdsOffset reports whether b's coordinator holds an offset of group g
// for topic/0. It looks inside: OffsetFetch v10 cannot name a deleted topic.
func holdsOffset(t *testing.T, b *Broker, g, topic string) bool {
	t.Helper()
	sh, e := b.groups.shardFor(g)
	if e != nil {
		t.Fatal(e)
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	grp := sh.groups[g]
	if grp == nil {
		return false
	}
	_, ok := grp.OffsetOf(group.TopicPartition{Topic: topic, Partition: 0})
	return ok
}

// commitTwo creates topics doomed and "kept" (one partition each) and has
// group g commit offset 4 on the first and 6 on the second.
func commitTwo(t *testing.T, adm *kadm.Client, g, doomed string) {
	t.Helper()
	createTopic(t, adm, doomed, 1, nil)
	createTopic(t, adm, "kept", 1, nil)
	if _, err := adm.CommitOffsets(testCtx(t), g, kadm.OffsetsFromRecords(
		kgo.Record{Topic: doomed, Partition: 0, Offset: 4}, kgo.Record{Topic: "kept", Partition: 0, Offset: 6})); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

// TestOffsetsOfRecreatedTopicRemoved deletes a topic and creates it again
// under the same name while the coordinator's tick is held, so no tick sees
// the topic missing: the offsets committed to the old topic must still go
// (Kafka removes them when the partitions are deleted), and the new topic's
// group starts without a position.
func TestOffsetsOfRecreatedTopicRemoved(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, groupTestConfig)
	adm := newAdmin(t, b)
	ctx := testCtx(t)
	commitTwo(t, adm, "g", "re")
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	hook := func(bool) {
		once.Do(func() {
			close(entered)
			<-release
		})
	}
	b.groups.tickHook.Store(&hook)
	defer b.groups.tickHook.Store(nil)
	<-entered // the tick holds, its state read before the delete
	if _, err := adm.DeleteTopics(ctx, "re"); err != nil {
		t.Fatalf("delete topic: %v", err)
	}
	createTopic(t, adm, "re", 1, nil)
	close(release)
	waitTick(t, b)
	offs, err := adm.FetchOffsets(ctx, "g")
	if err != nil {
		t.Fatalf("fetch offsets: %v", err)
	}
	if o, ok := offs.Lookup("re", 0); ok {
		t.Errorf("the re-created topic inherited the old topic's offset: %+v", o)
	}
	if o, ok := offs.Lookup("kept", 0); !ok || o.At != 7 {
		t.Errorf("offset of the untouched topic: %+v %v, want 7", o, ok)
	}
}

// TestOffsetsOfTopicDeletedBeforeLoadRemoved: a broker whose tick saw a
// topic's deletion before it coordinated the group (the shard loads later,
// from a log still holding the offsets, with no state change to come)
// purges them once the shard is loaded.
func TestOffsetsOfTopicDeletedBeforeLoadRemoved(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, groupTestConfig)
	adm := newAdmin(t, b)
	ctx := testCtx(t)
	commitTwo(t, adm, "g", "doomed")
	sh, e := b.groups.shardFor("g")
	if e != nil {
		t.Fatal(e)
	}
	hooked := make(chan error, 1)
	var once sync.Once
	hook := func(purge bool) {
		if purge {
			return
		}
		// On the tick goroutine, so the tick's own bookkeeping may be set:
		// the shard is retired, the topic deleted, and this broker's ticks
		// count the deletion as seen.
		once.Do(func() {
			b.groups.mu.Lock()
			delete(b.groups.shards, sh.index)
			b.groups.mu.Unlock()
			b.groups.unload(sh)
			_, err := adm.DeleteTopics(ctx, "doomed")
			waitStateSettled(b) // the deletion's follow-up commands included
			b.groups.topicsVersion = b.node.State().Version
			hooked <- err
		})
	}
	b.groups.tickHook.Store(&hook)
	defer b.groups.tickHook.Store(nil)
	if err := <-hooked; err != nil {
		t.Fatalf("delete topic: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		offs, err := adm.FetchOffsets(ctx, "g")
		if err != nil {
			t.Fatalf("fetch offsets: %v", err)
		}
		if o, ok := offs.Lookup("kept", 0); !ok || o.At != 7 {
			t.Fatalf("offset of the surviving topic: %+v %v", o, ok)
		}
		if !holdsOffset(t, b, "g", "doomed") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the coordinator still holds offsets of the topic deleted before its shard loaded")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestProduceToOffsetsTopicRefused checks that clients cannot write
// __consumer_offsets (only the coordinator appends to it).
func TestProduceToOffsetsTopicRefused(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, groupTestConfig)
	findCoordinator(t, rawClient(t, b))
	cl := newClient(t, b, kgo.RecordRetries(1))
	err := cl.ProduceSync(testCtx(t), &kgo.Record{Topic: offsetsTopic, Value: []byte("x")}).FirstErr()
	if !errors.Is(err, kerr.InvalidTopicException) {
		t.Fatalf("produce to %s: %v, want INVALID_TOPIC_EXCEPTION", offsetsTopic, err)
	}
}

// TestShardRetirementAnswersWaiters retires a coordinator shard (as when
// leadership of its __consumer_offsets partition moves) while a JoinGroup
// waits in it: the join is answered COORDINATOR_NOT_AVAILABLE at once and
// the next request loads a fresh shard from the log.
func TestShardRetirementAnswersWaiters(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, func(c *Config) { groupTestConfig(c); c.GroupInitialRebalanceDelay = time.Minute })
	cl := rawClient(t, b)
	findCoordinator(t, cl)
	r := send[*kmsg.JoinGroupResponse](t, cl, joinReqRaw("g", ""), 9)
	done := make(chan *kmsg.JoinGroupResponse, 1)
	go func() {
		c2 := rawClient(t, b)
		req := joinReqRaw("g", r.MemberID)
		req.SetVersion(9)
		c2.corr++
		if _, err := c2.nc.Write(frameOf(req, 9, c2.corr)); err != nil {
			done <- nil
			return
		}
		resp := kmsg.NewPtrJoinGroupResponse()
		resp.SetVersion(9)
		body := readResponse(t, c2.nc, c2.corr)
		if err := resp.ReadFrom(body[1:]); err != nil {
			done <- nil
			return
		}
		done <- resp
	}()
	sh, e := b.groups.shardFor("g")
	if e != nil {
		t.Fatalf("shard: %v", e)
	}
	// Wait until the join is parked in the group (bounded).
	for deadline := time.Now().Add(10 * time.Second); ; {
		sh.mu.Lock()
		n := 0
		if g := sh.groups["g"]; g != nil {
			n = g.NumMembers()
		}
		sh.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("join never reached the group")
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.groups.mu.Lock()
	delete(b.groups.shards, sh.index)
	b.groups.mu.Unlock()
	b.groups.unload(sh)
	select {
	case resp := <-done:
		if resp == nil || resp.ErrorCode != kerr.CoordinatorNotAvailable.Code {
			t.Fatalf("parked join after retirement: %+v", resp)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("parked join not answered after retirement")
	}
	if sh2, e := b.groups.shardFor("g"); e != nil || sh2 == sh {
		t.Fatalf("after retirement: shard %p (old %p), err %v", sh2, sh, e)
	}
}

// TestGroupAppendFailure: a group request whose append to
// __consumer_offsets fails, because the replica stopped leading before the
// shard was unloaded, is answered NOT_COORDINATOR as Kafka answers it (the
// client finds the coordinator again and retries), and changes nothing: the
// committed offset stays, and a failed OffsetDelete or DeleteGroups keeps
// it.
func TestGroupAppendFailure(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, groupTestConfig)
	createTopic(t, newAdmin(t, b), "t", 1, nil)
	cl := rawClient(t, b)
	findCoordinator(t, cl)
	commit := func(off int64) int16 {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group, req.Generation = "af", -1
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = "t"
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = 0, off
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return send[*kmsg.OffsetCommitResponse](t, cl, req, 8).Topics[0].Partitions[0].ErrorCode
	}
	del := func() int16 {
		req := kmsg.NewPtrOffsetDeleteRequest()
		req.Group = "af"
		rt := kmsg.NewOffsetDeleteRequestTopic()
		rt.Topic = "t"
		rp := kmsg.NewOffsetDeleteRequestTopicPartition()
		rp.Partition = 0
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return send[*kmsg.OffsetDeleteResponse](t, cl, req, 0).ErrorCode
	}
	fetch := func() int64 {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Group = "af"
		ft := kmsg.NewOffsetFetchRequestTopic()
		ft.Topic, ft.Partitions = "t", []int32{0}
		req.Topics = append(req.Topics, ft)
		resp := send[*kmsg.OffsetFetchResponse](t, cl, req, 7)
		if resp.ErrorCode != 0 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("offset fetch: %+v", resp)
		}
		return resp.Topics[0].Partitions[0].Offset
	}
	if code := commit(3); code != 0 {
		t.Fatalf("commit: %v", kerr.ErrorForCode(code))
	}
	setLeading := offsetsReplicaLeading(t, b, "af")
	deleteGroup := func() int16 {
		req := kmsg.NewPtrDeleteGroupsRequest()
		req.Groups = []string{"af"}
		return send[*kmsg.DeleteGroupsResponse](t, cl, req, 2).Groups[0].ErrorCode
	}
	setLeading(false)
	commitCode, delCode, delGroupCode := commit(4), del(), deleteGroup()
	setLeading(true)
	if delGroupCode != kerr.NotCoordinator.Code {
		t.Errorf("delete group while not leading: %v, want NOT_COORDINATOR", kerr.ErrorForCode(delGroupCode))
	}
	if commitCode != kerr.NotCoordinator.Code {
		t.Errorf("commit while not leading: %v, want NOT_COORDINATOR", kerr.ErrorForCode(commitCode))
	}
	if delCode != kerr.NotCoordinator.Code {
		t.Errorf("offset delete while not leading: %v, want NOT_COORDINATOR", kerr.ErrorForCode(delCode))
	}
	if off := fetch(); off != 3 {
		t.Fatalf("offset after the failed commit, offset delete and group delete: %d, want 3", off)
	}
	if code := del(); code != 0 {
		t.Fatalf("offset delete: %v", kerr.ErrorForCode(code))
	}
	if off := fetch(); off != -1 {
		t.Fatalf("offset after the delete: %d, want -1", off)
	}
	if code := deleteGroup(); code != 0 {
		t.Fatalf("delete group: %v", kerr.ErrorForCode(code))
	}
	if code := deleteGroup(); code != kerr.GroupIDNotFound.Code {
		t.Fatalf("delete group again: %v, want GROUP_ID_NOT_FOUND", kerr.ErrorForCode(code))
	}
}

// offsetsReplicaLeading returns a function that sets whether the
// __consumer_offsets replica coordinating group leads: off, it stands for a
// replica that stopped leading before its shard was unloaded, so every
// append to it fails.
func offsetsReplicaLeading(t *testing.T, b *Broker, group string) func(on bool) {
	t.Helper()
	sh, e := b.groups.shardFor(group)
	if e != nil {
		t.Fatal(e)
	}
	return func(on bool) {
		sh.p.repl.mu.Lock()
		sh.p.repl.leader = on
		sh.p.repl.mu.Unlock()
	}
}

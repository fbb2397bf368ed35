package raft

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	hraft "github.com/hashicorp/raft"
)

// TestProgressRecords: the leader's record of a follower's progress from
// the AppendEntries exchanges its transport carries.
func TestProgressRecords(t *testing.T) {
	t0 := time.Unix(1000, 0)
	type step struct {
		req     hraft.AppendEntriesRequest
		resp    hraft.AppendEntriesResponse
		last    uint64 // leader's last index when the response arrives
		at      time.Duration
		matched bool
		match   uint64
		contact time.Duration // -1: none
		caught  time.Duration // -1: none
	}
	entries := func(n int) []*hraft.Log { return make([]*hraft.Log, n) }
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"heartbeat alone is contact, not a match", []step{
			{req: hraft.AppendEntriesRequest{Term: 2}, resp: hraft.AppendEntriesResponse{Term: 2, Success: true, LastLog: 9},
				last: 9, at: time.Second, contact: time.Second, caught: -1},
		}},
		{"append matches and catches up", []step{
			{req: hraft.AppendEntriesRequest{Term: 2, PrevLogEntry: 5, Entries: entries(4)}, resp: hraft.AppendEntriesResponse{Term: 2, Success: true},
				last: 9, at: time.Second, matched: true, match: 9, contact: time.Second, caught: time.Second},
			{req: hraft.AppendEntriesRequest{Term: 2}, resp: hraft.AppendEntriesResponse{Term: 2, Success: true},
				last: 12, at: 2 * time.Second, matched: true, match: 9, contact: 2 * time.Second, caught: time.Second},
			{req: hraft.AppendEntriesRequest{Term: 2, PrevLogEntry: 9, Entries: entries(3)}, resp: hraft.AppendEntriesResponse{Term: 2, Success: true},
				last: 12, at: 3 * time.Second, matched: true, match: 12, contact: 3 * time.Second, caught: 3 * time.Second},
		}},
		{"a refusal above the match is contact only; a late smaller match never lowers it", []step{
			{req: hraft.AppendEntriesRequest{Term: 3, PrevLogEntry: 7, Entries: entries(1)}, resp: hraft.AppendEntriesResponse{Term: 3, Success: true},
				last: 10, at: time.Second, matched: true, match: 8, contact: time.Second, caught: -1},
			{req: hraft.AppendEntriesRequest{Term: 3, PrevLogEntry: 9, Entries: entries(1)}, resp: hraft.AppendEntriesResponse{Term: 3, Success: false, LastLog: 9},
				last: 10, at: 2 * time.Second, matched: true, match: 8, contact: 2 * time.Second, caught: -1},
			{req: hraft.AppendEntriesRequest{Term: 3, PrevLogEntry: 2, Entries: entries(1)}, resp: hraft.AppendEntriesResponse{Term: 3, Success: true},
				last: 10, at: 3 * time.Second, matched: true, match: 8, contact: 3 * time.Second, caught: -1},
		}},
		{"a refusal below the match lowers it (the follower lost its log)", []step{
			{req: hraft.AppendEntriesRequest{Term: 3, PrevLogEntry: 7, Entries: entries(1)}, resp: hraft.AppendEntriesResponse{Term: 3, Success: true},
				last: 8, at: time.Second, matched: true, match: 8, contact: time.Second, caught: time.Second},
			{req: hraft.AppendEntriesRequest{Term: 3, PrevLogEntry: 8, Entries: entries(1)}, resp: hraft.AppendEntriesResponse{Term: 3, Success: false, LastLog: 0},
				last: 9, at: 2 * time.Second, matched: true, match: 0, contact: 2 * time.Second, caught: time.Second},
			{req: hraft.AppendEntriesRequest{Term: 3, PrevLogEntry: 0, Entries: entries(9)}, resp: hraft.AppendEntriesResponse{Term: 3, Success: true},
				last: 9, at: 3 * time.Second, matched: true, match: 9, contact: 3 * time.Second, caught: 3 * time.Second},
		}},
		{"a newer term starts over; an older one is ignored", []step{
			{req: hraft.AppendEntriesRequest{Term: 3, PrevLogEntry: 7, Entries: entries(1)}, resp: hraft.AppendEntriesResponse{Term: 3, Success: true},
				last: 8, at: time.Second, matched: true, match: 8, contact: time.Second, caught: time.Second},
			{req: hraft.AppendEntriesRequest{Term: 5}, resp: hraft.AppendEntriesResponse{Term: 5, Success: true},
				last: 9, at: 2 * time.Second, contact: 2 * time.Second, caught: -1},
			{req: hraft.AppendEntriesRequest{Term: 3, PrevLogEntry: 8, Entries: entries(1)}, resp: hraft.AppendEntriesResponse{Term: 3, Success: true},
				last: 9, at: 3 * time.Second, contact: 2 * time.Second, caught: -1},
		}},
		{"a response of a newer term is no contact", []step{
			{req: hraft.AppendEntriesRequest{Term: 3}, resp: hraft.AppendEntriesResponse{Term: 4},
				last: 9, at: time.Second, contact: -1, caught: -1},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var last uint64
			var now time.Time
			p := newProgress(func() uint64 { return last })
			p.now = func() time.Time { return now }
			for i, s := range tc.steps {
				last, now = s.last, t0.Add(s.at)
				p.appended("2", &s.req, &s.resp)
				var got peerProgress
				if pp := p.peers["2"]; pp != nil {
					got = p.get("2", pp.term) // the newest term's record
				}
				want := func(d time.Duration) time.Time {
					if d < 0 {
						return time.Time{}
					}
					return t0.Add(d)
				}
				if got.matched != s.matched || got.match != s.match || !got.lastContact.Equal(want(s.contact)) || !got.caughtUp.Equal(want(s.caught)) {
					t.Fatalf("step %d: got matched=%v match=%d contact=%v caught=%v, want %v %d %v %v", i,
						got.matched, got.match, got.lastContact, got.caughtUp, s.matched, s.match, want(s.contact), want(s.caught))
				}
			}
		})
	}
}

// TestReadyToVote: promotion needs the committed log and recent contact.
func TestReadyToVote(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, tc := range []struct {
		name string
		pp   peerProgress
		want bool
	}{
		{"caught up and heard from", peerProgress{matched: true, match: 10, lastContact: now.Add(-100 * time.Millisecond)}, true},
		{"ahead of the commit index", peerProgress{matched: true, match: 12, lastContact: now}, true},
		{"behind the commit index", peerProgress{matched: true, match: 9, lastContact: now}, false},
		{"never matched this term", peerProgress{lastContact: now}, false},
		{"silent too long", peerProgress{matched: true, match: 10, lastContact: now.Add(-2 * time.Second)}, false},
		{"never heard from", peerProgress{matched: true, match: 10}, false},
	} {
		if got := readyToVote(tc.pp, 10, now, time.Second); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestDirectoryID: stable, distinct per node and cluster, never zero.
func TestDirectoryID(t *testing.T) {
	a, b, c := DirectoryID("c1", 1), DirectoryID("c1", 2), DirectoryID("c2", 1)
	if a != DirectoryID("c1", 1) || a == b || a == c || a == [16]byte{} || a[0]&0x80 != 0 {
		t.Fatalf("directory ids %x %x %x", a, b, c)
	}
}

// TestQuorumResponseRoundTrip: the forwarded DescribeQuorum answer.
func TestQuorumResponseRoundTrip(t *testing.T) {
	ms := time.UnixMilli(1_700_000_000_123)
	info := QuorumInfo{LeaderID: 2, LeaderEpoch: 7, HighWatermark: 42,
		Voters:    []ReplicaProgress{{ID: 1, Addr: "127.0.0.1:1", LogEndOffset: 42, LastFetch: ms, LastCaughtUp: ms}, {ID: 2, Addr: "a:2", LogEndOffset: -1}},
		Observers: []ReplicaProgress{{ID: 4, Addr: "b:4", LogEndOffset: 40, LastFetch: ms}}}
	got, remote, err := decodeQuorumResponse(encodeQuorumResponse(info, nil))
	if err != nil || remote != nil || !reflect.DeepEqual(got, info) {
		t.Fatalf("round trip: %+v %v %v", got, remote, err)
	}
	_, remote, err = decodeQuorumResponse(encodeQuorumResponse(QuorumInfo{}, ErrNotLeader))
	if err != nil || !errors.Is(remote, ErrNotLeader) {
		t.Fatalf("error round trip: %v %v", remote, err)
	}
}

// FuzzDecodeQuorumResponse: a leader's DescribeQuorum answer decodes or
// fails cleanly, and what decodes round-trips.
func FuzzDecodeQuorumResponse(f *testing.F) {
	ms := time.UnixMilli(1_700_000_000_123)
	f.Add(encodeQuorumResponse(QuorumInfo{LeaderID: 1, LeaderEpoch: 3, HighWatermark: 9,
		Voters: []ReplicaProgress{{ID: 1, Addr: "x:1", LogEndOffset: 9, LastFetch: ms, LastCaughtUp: ms}}}, nil))
	f.Add(encodeQuorumResponse(QuorumInfo{}, ErrNotLeader))
	f.Fuzz(func(t *testing.T, data []byte) {
		info, remote, err := decodeQuorumResponse(data)
		if err != nil || remote != nil {
			return
		}
		again, _, err := decodeQuorumResponse(encodeQuorumResponse(info, nil))
		if err != nil || !reflect.DeepEqual(again, info) {
			t.Fatalf("round trip: %+v -> %+v (%v)", info, again, err)
		}
	})
}

// waitQuorum polls DescribeQuorum on n until cond holds or ctx ends.
func waitQuorum(ctx context.Context, t *testing.T, n *Node, what string, cond func(QuorumInfo) bool) QuorumInfo {
	t.Helper()
	var last QuorumInfo
	var lastErr error
	for ctx.Err() == nil {
		last, lastErr = n.DescribeQuorum(ctx)
		if lastErr == nil && cond(last) {
			return last
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("node %d: waiting for %s: last %+v, %v", n.ID(), what, last, lastErr)
	return last
}

func ids(rs []ReplicaProgress) []int32 {
	out := []int32{}
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

// caughtUp: every replica's log end equals the leader's, the high
// watermark included.
func caughtUp(q QuorumInfo) bool {
	var leo int64 = -2
	for _, v := range q.Voters {
		if v.ID == q.LeaderID {
			leo = v.LogEndOffset
		}
	}
	for _, r := range append(append([]ReplicaProgress{}, q.Voters...), q.Observers...) {
		if r.LogEndOffset != leo || r.LastFetch.IsZero() || r.LastCaughtUp.IsZero() {
			return false
		}
	}
	return q.HighWatermark == leo
}

// TestQuorumDescribeAndChangeVoters: three voters and a non-voter. Every
// node, followers and the non-voter included, describes the same quorum
// (the leader's view, forwarded), with the leader as the raft leader, all
// replicas caught up; the non-voter is promoted and a voter demoted (it
// stays an observer and keeps replicating), and the refusals carry Kafka's
// reasons.
func TestQuorumDescribeAndChangeVoters(t *testing.T) {
	ctx := testCtx(t)
	c := newStaticCluster(t, 3, 0)
	nv, err := openNonVoter(t, c, 4, freeAddrs(t, 1)[0], t.TempDir())
	if err != nil {
		t.Fatalf("open non-voter: %v", err)
	}
	t.Cleanup(func() { _ = nv.Close() })
	if err := nv.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := nv.Apply(ctx, CreateTopic{Topic: topic("q", idA, 1, 1, 2, 3)})
	if err != nil {
		t.Fatal(err)
	}
	all := append(c.live(), nv)
	for _, n := range all {
		q := waitQuorum(ctx, t, n, "all caught up", func(q QuorumInfo) bool {
			return caughtUp(q) && len(q.Voters) == 3 && len(q.Observers) == 1
		})
		lid, _ := n.LeaderID()
		if q.LeaderID != lid || q.HighWatermark < int64(res.Index) || q.LeaderEpoch < 1 ||
			!reflect.DeepEqual(ids(q.Voters), []int32{1, 2, 3}) || !reflect.DeepEqual(ids(q.Observers), []int32{4}) {
			t.Fatalf("node %d describes %+v (leader %d, applied index %d)", n.ID(), q, lid, res.Index)
		}
	}

	follower := c.follower(ctx)
	for _, tc := range []struct {
		name string
		op   func() error
		want error
	}{
		{"promote a voter", func() error { return follower.PromoteVoter(ctx, 1) }, ErrDuplicateVoter},
		{"promote a stranger", func() error { return follower.PromoteVoter(ctx, 9) }, ErrNotMember},
		{"demote a stranger", func() error { return follower.DemoteVoter(ctx, 9) }, ErrVoterNotFound},
		{"demote a non-voter", func() error { return follower.DemoteVoter(ctx, 4) }, ErrVoterNotFound},
	} {
		if err := tc.op(); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}

	if err := nv.PromoteVoter(ctx, 4); err != nil {
		t.Fatalf("promote 4: %v", err)
	}
	waitQuorum(ctx, t, follower, "4 votes", func(q QuorumInfo) bool {
		return reflect.DeepEqual(ids(q.Voters), []int32{1, 2, 3, 4}) && len(q.Observers) == 0 && caughtUp(q)
	})
	// Demote the leader itself: it steps down and keeps replicating.
	old := c.leader()
	if old == nil {
		t.Fatal("no leader")
	}
	if err := nv.DemoteVoter(ctx, old.ID()); err != nil {
		t.Fatalf("demote leader %d: %v", old.ID(), err)
	}
	q := waitQuorum(ctx, t, nv, "old leader observes", func(q QuorumInfo) bool {
		return len(q.Voters) == 3 && reflect.DeepEqual(ids(q.Observers), []int32{old.ID()}) && q.LeaderID != old.ID() && caughtUp(q)
	})
	if _, err := old.Apply(ctx, CreateTopic{Topic: topic("after", idB, 1, 1)}); err != nil {
		t.Fatalf("apply through the demoted node: %v (quorum %+v)", err, q)
	}
}

// TestDemoteLastVoter: the only voter cannot be demoted (Kafka's
// VOTER_NOT_FOUND for removing the last voter).
func TestDemoteLastVoter(t *testing.T) {
	n := openMember(t, 1, true)
	t.Cleanup(func() { _ = n.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.DemoteVoter(ctx, 1); !errors.Is(err, ErrVoterNotFound) {
		t.Fatalf("demote the only voter: %v", err)
	}
	q, err := n.DescribeQuorum(ctx)
	if err != nil || q.LeaderID != 1 || len(q.Voters) != 1 || q.Voters[0].LogEndOffset < q.HighWatermark {
		t.Fatalf("describe: %+v %v", q, err)
	}
}

// TestDescribeQuorumWithoutLeader: a node whose peers are gone answers
// ErrNotLeader once its context ends (the broker's NOT_LEADER_OR_FOLLOWER).
func TestDescribeQuorumWithoutLeader(t *testing.T) {
	c := newStaticCluster(t, 3, 0)
	for i := 1; i < 3; i++ {
		_ = c.nodes[i].Close()
		c.nodes[i] = nil
	}
	// A leader alone steps down once its lease runs out.
	wctx := testCtx(t)
	for c.nodes[0].IsLeader() && wctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if q, err := c.nodes[0].DescribeQuorum(ctx); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("describe without a quorum: %+v %v", q, err)
	}
}

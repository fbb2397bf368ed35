package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/raft"
)

// waitBrokerState waits on b's raft notifications until cond holds.
func waitBrokerState(ctx context.Context, t *testing.T, b *Broker, what string, cond func(*raft.State) bool) *raft.State {
	t.Helper()
	ch, cancel := b.node.Subscribe()
	defer cancel()
	for {
		if s := b.node.State(); cond(s) {
			return s
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("broker %d: waiting for %s: %v", b.cfg.NodeID, what, ctx.Err())
		}
	}
}

// TestMultiNodeControlledShutdown: brokers of a three-voter cluster serve
// once unfenced; a topic created on one is on all; closing a broker moves
// its leaderships away at once (the session timeout is far longer than the
// test's bound, so only the controlled shutdown can have done it), and its
// partitions accept records on their new leaders.
func TestMultiNodeControlledShutdown(t *testing.T) {
	t.Parallel()
	bs := startTestCluster(t, 3, func(c *Config) { c.BrokerSessionTimeout = 5 * time.Minute }).brokers
	ctx := testCtx(t)
	for _, b := range bs {
		s := b.node.State()
		if br := s.Brokers[b.cfg.NodeID]; br.Fenced || br.Epoch != b.brokerEpoch || !b.mayLead(s) {
			t.Fatalf("broker %d started but %+v (epoch %d) may lead %v", b.cfg.NodeID, br, b.brokerEpoch, b.mayLead(s))
		}
	}
	adm := newAdmin(t, bs[1])
	resp, err := adm.CreateTopic(ctx, 6, 3, nil, "t")
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic: %v %v", err, resp.Err)
	}
	var before *raft.State
	for _, b := range bs {
		before = waitBrokerState(ctx, t, b, "the topic", func(s *raft.State) bool { return s.Topics["t"] != nil })
	}
	victim := bs[before.Topics["t"].Partitions[0].Leader-1]
	var rest []*Broker
	for _, b := range bs {
		if b != victim {
			rest = append(rest, b)
		}
	}
	if err := victim.Close(); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	id := victim.cfg.NodeID
	for _, b := range rest {
		s := waitBrokerState(sctx, t, b, fmt.Sprintf("broker %d fenced with its leaderships moved", id), func(s *raft.State) bool {
			if !s.Brokers[id].Fenced {
				return false
			}
			for _, p := range s.Topics["t"].Partitions {
				if p.Leader == id || slices.Contains(p.ISR, id) {
					return false
				}
			}
			return true
		})
		for i, p := range s.Topics["t"].Partitions {
			if old := before.Topics["t"].Partitions[i]; old.Leader == id && (p.Leader < 0 || p.LeaderEpoch != old.LeaderEpoch+1) {
				t.Fatalf("partition %d after controlled shutdown of %d: %+v (was %+v)", i, id, p, old)
			}
		}
	}
	cl := newClient(t, rest[0], kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()))
	var rs []*kgo.Record
	for i := range 6 {
		rs = append(rs, &kgo.Record{Topic: "t", Partition: int32(i), Value: []byte("v")})
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce after controlled shutdown: %v", err)
	}
}

func TestMayLead(t *testing.T) {
	voters := []raft.Voter{{ID: 1, Addr: "h:1"}, {ID: 2, Addr: "h:2"}}
	st := func(fenced bool) *raft.State {
		return &raft.State{Brokers: map[int32]raft.Broker{1: {ID: 1, Fenced: fenced}}}
	}
	for _, tc := range []struct {
		name      string
		voters    []raft.Voter
		state     *raft.State
		heartbeat time.Duration // age of the last heartbeat; 0: none
		want      bool
	}{
		{"single node", nil, st(false), 0, true},
		{"single node, fenced", nil, st(true), 0, false},
		{"not registered", nil, &raft.State{}, 0, false},
		{"cluster, fresh heartbeat", voters, st(false), time.Second, true},
		{"cluster, fenced", voters, st(true), time.Second, false},
		{"cluster, no heartbeat yet", voters, st(false), 0, false},
		{"cluster, heartbeat older than the session", voters, st(false), 10 * time.Second, false},
	} {
		b := &Broker{cfg: Config{NodeID: 1, Voters: tc.voters, BrokerSessionTimeout: 9 * time.Second}}
		if tc.heartbeat > 0 {
			b.lastHeartbeat.Store(time.Now().Add(-tc.heartbeat).UnixNano())
		}
		if got := b.mayLead(tc.state); got != tc.want {
			t.Errorf("%s: mayLead %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestMultiNodeNoQuorum: a voter started without the others gives up after
// StartTimeout with an error that names the voters and the majority.
func TestMultiNodeNoQuorum(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.RaftListen = "127.0.0.1:0"
	cfg.Voters = []raft.Voter{{ID: 1, Addr: "127.0.0.1:1"}, {ID: 2, Addr: "127.0.0.1:2"}, {ID: 3, Addr: "127.0.0.1:3"}}
	cfg.StartTimeout = 300 * time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := Start(cfg)
	if err == nil {
		b.Close()
		t.Fatal("started without a quorum")
	}
	if !errors.Is(err, raft.ErrNoQuorum) || !strings.Contains(err.Error(), "2 of 3") ||
		!strings.Contains(err.Error(), "1@127.0.0.1:1,2@127.0.0.1:2,3@127.0.0.1:3") {
		t.Fatalf("error: %v", err)
	}
	cfg.NodeID = 4
	if _, err := Start(cfg); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("node not among the voters: %v", err)
	}
}

// TestBrokerOnlyNode: a fourth node started with process roles "broker"
// joins three voters as a raft non-voter, is unfenced by the controller,
// leads and follows partitions like any broker, and after a clean stop and
// a restart catches up without a change of the voter set.
func TestBrokerOnlyNode(t *testing.T) {
	t.Parallel()
	c := startMixedCluster(t, 4, 3, nil)
	ctx := testCtx(t)
	srv, err := c.brokers[0].node.Servers()
	if err != nil {
		t.Fatal(err)
	}
	roles := map[int32]bool{}
	for _, s := range srv {
		roles[s.ID] = s.Voter
	}
	if len(roles) != 4 || !roles[1] || !roles[2] || !roles[3] || roles[4] {
		t.Fatalf("raft configuration %+v: want voters 1-3 and non-voter 4", srv)
	}
	waitBrokerState(ctx, t, c.brokers[0], "broker 4 unfenced", func(s *raft.State) bool {
		br, ok := s.Brokers[4]
		return ok && !br.Fenced
	})
	c.createWithAssignment("t", map[string]string{"min.insync.replicas": "2"}, []int32{4, 1, 2, 3}, []int32{1, 4, 2, 3})
	c.waitPartition("t", 0, func(p raft.Partition) bool { return p.Leader == 4 }, "leader 4, the broker-only node")
	cl := c.client(kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()))
	produce := func(from, to int) {
		t.Helper()
		var rs []*kgo.Record
		for i := from; i < to; i++ {
			rs = append(rs, &kgo.Record{Topic: "t", Partition: int32(i % 2), Value: []byte(fmt.Sprint(i))})
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatalf("produce %d-%d: %v", from, to, err)
		}
	}
	produce(0, 100)
	for p := range int32(2) {
		c.waitInSync("t", p, 4)
	}

	c.stop(3)
	c.waitPartition("t", 0, func(p raft.Partition) bool { return p.Leader != 4 && p.Leader >= 0 }, "leader other than 4")
	produce(100, 200)
	c.restart(3)
	for p := range int32(2) {
		c.waitInSync("t", p, 4)
	}
	if srv, err := c.brokers[3].node.Servers(); err != nil || len(srv) != 4 {
		t.Fatalf("restarted broker-only node's raft configuration: %+v %v", srv, err)
	}
	seen := map[string]int{}
	for _, r := range consumeAll(t, c.brokers[3], "t", false) {
		seen[string(r.Value)]++
	}
	for i := range 200 {
		if n := seen[fmt.Sprint(i)]; n != 1 {
			t.Errorf("record %d read %d times", i, n)
		}
	}

	// Decommissioning: UnregisterBroker refuses voters and running
	// brokers, then forgets the stopped broker-only node in the metadata
	// and in the raft configuration.
	unregister := func(id int32) (int16, string) {
		t.Helper()
		req := kmsg.NewPtrUnregisterBrokerRequest()
		req.BrokerID = id
		resp, err := req.RequestWith(ctx, c.client())
		if err != nil {
			t.Fatalf("unregister %d: %v", id, err)
		}
		msg := ""
		if resp.ErrorMessage != nil {
			msg = *resp.ErrorMessage
		}
		return resp.ErrorCode, msg
	}
	for _, tc := range []struct {
		id   int32
		want *kerr.Error
	}{{2, kerr.InvalidRequest}, {4, kerr.InvalidRequest}, {9, kerr.BrokerIDNotRegistered}} {
		if code, msg := unregister(tc.id); code != tc.want.Code {
			t.Errorf("unregister %d: %v (%s), want %v", tc.id, kerr.ErrorForCode(code), msg, tc.want)
		}
	}
	c.stop(3)
	// The stopped node saw itself fenced; the broker the request reaches
	// may apply that fence a moment later.
	for i := range 3 {
		waitBrokerState(ctx, t, c.brokers[i], "broker 4 fenced", func(s *raft.State) bool { br, ok := s.Brokers[4]; return ok && br.Fenced })
	}
	if code, msg := unregister(4); code != 0 {
		t.Fatalf("unregister the stopped broker-only node: %v (%s)", kerr.ErrorForCode(code), msg)
	}
	for i := range 3 {
		waitBrokerState(ctx, t, c.brokers[i], "broker 4 gone", func(s *raft.State) bool { _, ok := s.Brokers[4]; return !ok })
	}
	for i := range 3 {
		// The configuration change reaches followers with the leader's next
		// AppendEntries.
		for {
			srv, err := c.brokers[i].node.Servers()
			if err == nil && len(srv) == 3 && !slices.ContainsFunc(srv, func(s raft.Server) bool { return s.ID == 4 }) {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("node %d's raft configuration after unregistering 4: %+v %v", i+1, srv, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if code, _ := unregister(4); code != kerr.BrokerIDNotRegistered.Code {
		t.Errorf("second unregister of 4: %v", kerr.ErrorForCode(code))
	}
}

// TestMetadataFindsTopicJustCreated creates topics through the controller and at once asks every other
// broker for each by name and by id: each must answer with the topic, not UNKNOWN_TOPIC_OR_PARTITION,
// though the other nodes apply the creation only when the raft leader next sends them its commit index.
// A topic that does not exist is still unknown, after the bounded wait.
func TestMetadataFindsTopicJustCreated(t *testing.T) {
	t.Parallel()
	c := startTestCluster(t, 3, nil)
	ctx := testCtx(t)
	var leader *Broker
	for deadline := time.Now().Add(10 * time.Second); leader == nil; {
		for _, b := range c.brokers {
			if b.node.IsLeader() {
				leader = b
			}
		}
		if leader == nil && time.Now().After(deadline) {
			t.Fatal("no raft leader")
		}
		time.Sleep(10 * time.Millisecond)
	}
	adm := newAdmin(t, leader)
	for i := range 5 {
		name := fmt.Sprintf("fresh-%d", i)
		resp, err := adm.CreateTopic(ctx, 2, 3, nil, name)
		if err != nil || resp.Err != nil {
			t.Fatalf("create %s: %v %v", name, err, resp.Err)
		}
		for _, b := range c.brokers {
			if b == leader {
				continue
			}
			req := kmsg.NewPtrMetadataRequest()
			byName := kmsg.NewMetadataRequestTopic()
			byName.Topic = kmsg.StringPtr(name)
			byID := kmsg.NewMetadataRequestTopic()
			byID.TopicID = resp.ID
			req.Topics = []kmsg.MetadataRequestTopic{byName, byID}
			got, err := req.RequestWith(ctx, newClient(t, b))
			if err != nil {
				t.Fatal(err)
			}
			for _, mt := range got.Topics {
				if mt.ErrorCode != 0 || len(mt.Partitions) != 2 {
					t.Errorf("broker %d, just after %s was created: error %d, %d partitions; want the topic",
						b.cfg.NodeID, name, mt.ErrorCode, len(mt.Partitions))
				}
			}
		}
	}
	req := kmsg.NewPtrMetadataRequest()
	none := kmsg.NewMetadataRequestTopic()
	none.Topic = kmsg.StringPtr("never-created")
	req.Topics = []kmsg.MetadataRequestTopic{none}
	var follower *Broker
	for _, b := range c.brokers {
		if b != leader {
			follower = b
		}
	}
	got, err := req.RequestWith(ctx, newClient(t, follower))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Topics) != 1 || got.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("a topic never created: %+v, want UNKNOWN_TOPIC_OR_PARTITION", got.Topics)
	}
}

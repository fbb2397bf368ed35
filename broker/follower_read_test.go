package broker

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/raft"
	"github.com/stromhq/strom/storage"
)

// produceTo writes values v<from>..v<from+n-1> to one partition, acks=all.
func produceTo(t *testing.T, cl *kgo.Client, topic string, part int32, from, n int) {
	t.Helper()
	var recs []*kgo.Record
	for i := from; i < from+n; i++ {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: part, Value: []byte(fmt.Sprintf("v%06d", i))})
	}
	if err := cl.ProduceSync(testCtx(t), recs...).FirstErr(); err != nil {
		t.Fatalf("produce %d..%d to %s-%d: %v", from, from+n, topic, part, err)
	}
}

// fetchAnswer is the one partition of a raw fetch answer, with its records
// counted.
type fetchAnswer struct {
	kmsg.FetchResponseTopicPartition
	records, last int64 // record count and last offset (-1: none)
}

// rawFetch sends a consumer Fetch at version v (names, not topic IDs, so
// v <= 12) for one partition to node i of c and returns its answer.
func rawFetch(t *testing.T, c *testCluster, i int, v int16, topic string, part int32, offset int64, epoch int32, rack string, isolation int8) fetchAnswer {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxBytes, req.MinBytes, req.MaxWaitMillis = 1<<20, 0, 0
	req.SessionEpoch = -1
	req.IsolationLevel = isolation
	req.Rack = rack
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.CurrentLeaderEpoch, rp.PartitionMaxBytes = part, offset, epoch, 1<<20
	rp.LogStartOffset, rp.LastFetchedEpoch = -1, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	cl := rawClient(t, c.brokers[i])
	defer cl.nc.Close()
	resp := send[*kmsg.FetchResponse](t, cl, req, v)
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("fetch %s-%d from node %d: code %d, %d topics", topic, part, i+1, resp.ErrorCode, len(resp.Topics))
	}
	a := fetchAnswer{FetchResponseTopicPartition: resp.Topics[0].Partitions[0], last: -1}
	for rest := a.RecordBatches; len(rest) > 0; {
		h, err := storage.ParseBatchHeader(rest)
		if err != nil || h.Size() > len(rest) {
			t.Fatalf("fetch %s-%d from node %d: bad batch: %v", topic, part, i+1, err)
		}
		if !h.IsControl() {
			a.records += int64(h.NumRecords)
		}
		a.last = h.LastOffset()
		rest = rest[h.Size():]
	}
	return a
}

// consumeFrom reads n records of one partition from offset with a client
// in rack, and returns their values.
func consumeFrom(t *testing.T, c *testCluster, rack, topic string, part int32, offset int64, n int, opts ...kgo.Opt) []string {
	t.Helper()
	opts = append(opts, kgo.Rack(rack), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		topic: {part: kgo.NewOffset().At(offset)}}))
	cl := c.client(opts...)
	defer cl.Close()
	ctx := testCtx(t)
	var out []string
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("rack %s: consumed %d of %d records of %s-%d: %v", rack, len(out), n, topic, part, ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s-%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) { out = append(out, string(r.Value)) })
	}
	return out
}

// wantSeq fails unless got is v<from>, v<from+1>, ...
func wantSeq(t *testing.T, got []string, from int) {
	t.Helper()
	for i, v := range got {
		if want := fmt.Sprintf("v%06d", from+i); v != want {
			t.Fatalf("record %d: %q, want %q", i, v, want)
		}
	}
}

// waitKnown waits until every node's metadata has topic.
func waitKnown(t *testing.T, c *testCluster, topic string) {
	t.Helper()
	for _, b := range c.brokers {
		waitBrokerState(testCtx(t), t, b, topic+" known", func(s *raft.State) bool { return s.Topics[topic] != nil })
	}
}

// changePartition applies a PartitionChange of topic/part from its current
// raft record, with mod adjusting it.
func changePartition(t *testing.T, c *testCluster, topic string, part int32, mod func(*raft.PartitionChange)) {
	t.Helper()
	st := c.brokers[0].node.State()
	tp := st.Topics[topic]
	p := tp.Partitions[part]
	cmd := raft.PartitionChange{TopicID: tp.ID, Partition: part, Leader: p.Leader, ISR: slices.Clone(p.ISR),
		LeaderEpoch: p.LeaderEpoch, ExpectedPartitionEpoch: p.PartitionEpoch}
	mod(&cmd)
	if _, err := c.brokers[0].node.Apply(testCtx(t), cmd); err != nil {
		t.Fatalf("change %s-%d: %v", topic, part, err)
	}
}

// TestFetchFromFollower runs one three-rack cluster (nodes 1, 2, 3 in racks
// a, b, c, rack-aware replica selector) through KIP-392: a leader points
// consumers of other racks at their rack's in-sync replica, followers serve
// them up to their own high watermark (or last stable offset), and clients
// follow leader changes and lagging followers. The per-broker count of
// follower-served reads proves where the records came from.
func TestFetchFromFollower(t *testing.T) {
	t.Parallel()
	racks := []string{"a", "b", "c"}
	c := startTestCluster(t, 3, func(cfg *Config) {
		cfg.Rack = racks[cfg.NodeID-1]
		cfg.ReplicaSelectorClass = RackAwareSelector
		cfg.TransactionTopicPartitions = 1 // one transactional id: keep the internal topic small
		// Only the test moves leaders and ISRs: on a loaded machine a late
		// heartbeat or fetch must not fence a broker or drop a follower.
		cfg.BrokerSessionTimeout = 15 * time.Second
		cfg.ReplicaLagTimeMax = time.Minute
	})
	ctx := testCtx(t)
	adm := kadm.NewClient(c.client())
	meta, err := adm.BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, br := range meta.Brokers {
		if br.Rack == nil || *br.Rack != racks[br.NodeID-1] {
			t.Fatalf("metadata: broker %d rack %v, want %s", br.NodeID, br.Rack, racks[br.NodeID-1])
		}
	}
	dreq := kmsg.NewPtrDescribeConfigsRequest()
	dr := kmsg.NewDescribeConfigsRequestResource()
	dr.ResourceType, dr.ResourceName = kmsg.ConfigResourceTypeBroker, "2"
	dreq.Resources = append(dreq.Resources, dr)
	raw := rawClient(t, c.brokers[1])
	dresp := send[*kmsg.DescribeConfigsResponse](t, raw, dreq, 4)
	raw.nc.Close()
	if len(dresp.Resources) != 1 || dresp.Resources[0].ErrorCode != 0 {
		t.Fatalf("describe broker 2: %+v", dresp.Resources)
	}
	described := map[string]string{}
	for _, cfg := range dresp.Resources[0].Configs {
		if cfg.Value != nil {
			described[cfg.Name] = *cfg.Value
		}
	}
	if described["broker.rack"] != "b" || described["replica.selector.class"] != RackAwareSelector {
		t.Fatalf("broker 2 describes broker.rack %q replica.selector.class %q", described["broker.rack"], described["replica.selector.class"])
	}
	createReplicated(t, c, "ffr", 3, "1")
	waitKnown(t, c, "ffr")
	// Rack-aware placement: three replicas each, leaders on three brokers.
	// pa is the partition node 1 (rack a) leads, pb the one node 2 leads.
	pa, pb := int32(-1), int32(-1)
	for i := range int32(3) {
		p := c.partitionState("ffr", i)
		if len(p.Replicas) != 3 {
			t.Fatalf("ffr-%d placed on %v, want 3 replicas", i, p.Replicas)
		}
		switch p.Leader {
		case 1:
			pa = i
		case 2:
			pb = i
		}
	}
	if pa < 0 || pb < 0 {
		t.Fatalf("ffr leaders not spread over the brokers: %+v %+v %+v", c.partitionState("ffr", 0), c.partitionState("ffr", 1), c.partitionState("ffr", 2))
	}
	cl := c.client(kgo.RecordPartitioner(kgo.ManualPartitioner()))
	const n = 200
	produceTo(t, cl, "ffr", pa, 0, n)
	c.waitInSync("ffr", pa, 3)
	reads := func(i int) int64 { return c.brokers[i].followerReads.Load() }

	t.Run("raw", func(t *testing.T) {
		if a := rawFetch(t, c, 0, 12, "ffr", pa, 0, 0, "b", 0); a.ErrorCode != 0 || a.PreferredReadReplica != 2 || a.records != 0 || a.HighWatermark != n {
			t.Fatalf("leader, client in rack b: code %d preferred %d records %d hw %d; want preferred 2, no records, hw %d",
				a.ErrorCode, a.PreferredReadReplica, a.records, a.HighWatermark, n)
		}
		for _, rack := range []string{"a", "", "zz"} {
			if a := rawFetch(t, c, 0, 12, "ffr", pa, 0, 0, rack, 0); a.ErrorCode != 0 || a.PreferredReadReplica != -1 || a.records == 0 {
				t.Fatalf("leader, client in rack %q: code %d preferred %d records %d; want records from the leader", rack, a.ErrorCode, a.PreferredReadReplica, a.records)
			}
		}
		before := reads(1)
		var got int64
		for off := int64(0); off < n; {
			a := rawFetch(t, c, 1, 12, "ffr", pa, off, 0, "b", 0)
			if a.ErrorCode != 0 || a.records == 0 || a.HighWatermark != n || a.last >= a.HighWatermark {
				t.Fatalf("follower at %d: code %d records %d last %d hw %d", off, a.ErrorCode, a.records, a.last, a.HighWatermark)
			}
			got += a.records
			off = a.last + 1
		}
		if got != n || reads(1) == before {
			t.Fatalf("follower served %d records (%d reads counted), want %d", got, reads(1)-before, n)
		}
		for _, tc := range []struct {
			name   string
			v      int16
			offset int64
			epoch  int32
			want   *kerr.Error
		}{
			{"fetch v10 carries no rack", 10, 0, -1, kerr.NotLeaderForPartition},
			{"future leader epoch", 12, 0, 1, kerr.UnknownLeaderEpoch},
			{"past the follower's log end", 12, n + 1, 0, kerr.OffsetOutOfRange},
		} {
			if a := rawFetch(t, c, 1, tc.v, "ffr", pa, tc.offset, tc.epoch, "b", 0); a.ErrorCode != tc.want.Code {
				t.Fatalf("%s: code %d, want %v", tc.name, a.ErrorCode, tc.want)
			}
		}
		// At the follower's high watermark: nothing yet, no error.
		if a := rawFetch(t, c, 1, 12, "ffr", pa, n, 0, "b", 0); a.ErrorCode != 0 || a.records != 0 {
			t.Fatalf("follower at its high watermark: code %d records %d", a.ErrorCode, a.records)
		}
		// A broker that holds no replica is neither leader nor follower.
		if resp, err := adm.CreateTopic(ctx, 1, 1, nil, "ffr-one"); err != nil || resp.Err != nil {
			t.Fatalf("create ffr-one: %v %v", err, resp.Err)
		}
		waitKnown(t, c, "ffr-one")
		other := int(c.partitionState("ffr-one", 0).Replicas[0]) % 3 // a node index that is no replica
		if a := rawFetch(t, c, other, 12, "ffr-one", 0, 0, -1, racks[other], 0); a.ErrorCode != kerr.NotLeaderForPartition.Code {
			t.Fatalf("non-replica: code %d, want NOT_LEADER_OR_FOLLOWER", a.ErrorCode)
		}
	})

	t.Run("consumer in rack b reads from the follower", func(t *testing.T) {
		before, leaderBefore := reads(1), reads(0)
		wantSeq(t, consumeFrom(t, c, "b", "ffr", pa, 0, n), 0)
		if reads(1) == before {
			t.Fatal("node 2 (rack b) served no reads")
		}
		if reads(0) != leaderBefore {
			t.Fatal("the leader counted a follower read")
		}
	})

	t.Run("lagging follower", func(t *testing.T) {
		// Node 2 stops fetching and leaves the ISR; the leader moves on.
		c.brokers[1].fetchers.hold.Store(true)
		c.waitPartition("ffr", pa, func(raft.Partition) bool { return c.brokers[1].fetchers.allHeld() }, "node 2's fetchers held")
		changePartition(t, c, "ffr", pa, func(pc *raft.PartitionChange) { pc.ISR = []int32{1, 3} })
		c.waitPartition("ffr", pa, func(p raft.Partition) bool { return !slices.Contains(p.ISR, 2) }, "ISR without node 2")
		produceTo(t, cl, "ffr", pa, n, 50)
		// The follower serves only what it has below its own high watermark.
		if a := rawFetch(t, c, 1, 12, "ffr", pa, 0, 0, "b", 0); a.ErrorCode != 0 || a.HighWatermark != n || a.last >= n {
			t.Fatalf("lagging follower: code %d hw %d last %d, want hw %d", a.ErrorCode, a.HighWatermark, a.last, n)
		}
		if a := rawFetch(t, c, 1, 12, "ffr", pa, n, 0, "b", 0); a.ErrorCode != 0 || a.records != 0 {
			t.Fatalf("lagging follower at its log end: code %d records %d", a.ErrorCode, a.records)
		}
		if a := rawFetch(t, c, 1, 12, "ffr", pa, n+10, 0, "b", 0); a.ErrorCode != kerr.OffsetOutOfRange.Code {
			t.Fatalf("lagging follower past its log end: code %d, want OFFSET_OUT_OF_RANGE", a.ErrorCode)
		}
		// Out of the ISR it is never preferred: rack b reads the leader.
		if a := rawFetch(t, c, 0, 12, "ffr", pa, n, 0, "b", 0); a.PreferredReadReplica != -1 || a.records != 50 {
			t.Fatalf("leader with node 2 out of the ISR: preferred %d records %d", a.PreferredReadReplica, a.records)
		}
		before := reads(1)
		wantSeq(t, consumeFrom(t, c, "b", "ffr", pa, 0, n+50), 0)
		if reads(1) != before {
			t.Fatal("the lagging follower served reads")
		}
		c.brokers[1].fetchers.hold.Store(false)
		c.waitInSync("ffr", pa, 3)
		// The leader's own copy of the ISR follows raft's on its next
		// reconcile.
		c.waitPartition("ffr", pa, func(raft.Partition) bool {
			r := &c.brokers[0].parts.get("ffr", pa).repl
			r.mu.Lock()
			defer r.mu.Unlock()
			return slices.Contains(r.isr, 2)
		}, "node 2 in the leader's ISR")
		if a := rawFetch(t, c, 0, 12, "ffr", pa, n, 0, "b", 0); a.PreferredReadReplica != 2 {
			t.Fatalf("caught-up follower back in the ISR: preferred %d, want 2", a.PreferredReadReplica)
		}
	})

	t.Run("leader change", func(t *testing.T) {
		changePartition(t, c, "ffr", pa, func(pc *raft.PartitionChange) { pc.Leader, pc.LeaderEpoch = 3, pc.LeaderEpoch+1 })
		epoch := c.partitionState("ffr", pa).LeaderEpoch
		c.waitPartition("ffr", pa, func(raft.Partition) bool {
			return c.brokers[0].parts.get("ffr", pa).leaderEpoch.Load() == epoch && c.brokers[1].parts.get("ffr", pa).leaderEpoch.Load() == epoch
		}, "the new epoch on nodes 1 and 2")
		// acks=all through the new leader: every follower has fetched from it.
		produceTo(t, cl, "ffr", pa, n+50, 50)
		c.waitInSync("ffr", pa, 3)
		if a := rawFetch(t, c, 1, 12, "ffr", pa, 0, epoch-1, "b", 0); a.ErrorCode != kerr.FencedLeaderEpoch.Code {
			t.Fatalf("follower, stale epoch: code %d, want FENCED_LEADER_EPOCH", a.ErrorCode)
		}
		// The old leader is now a follower and serves its rack.
		if a := rawFetch(t, c, 0, 12, "ffr", pa, 0, epoch, "a", 0); a.ErrorCode != 0 || a.records == 0 {
			t.Fatalf("old leader as follower: code %d records %d", a.ErrorCode, a.records)
		}
		if a := rawFetch(t, c, 2, 12, "ffr", pa, 0, epoch, "b", 0); a.PreferredReadReplica != 2 {
			t.Fatalf("new leader, client in rack b: preferred %d, want 2", a.PreferredReadReplica)
		}
		before := reads(1)
		wantSeq(t, consumeFrom(t, c, "b", "ffr", pa, 0, n+100), 0)
		if reads(1) == before {
			t.Fatal("node 2 (rack b) served no reads after the leader change")
		}
	})

	t.Run("no replica in the client's rack", func(t *testing.T) {
		if resp, err := adm.CreateTopic(ctx, 1, 2, nil, "ffr-two"); err != nil || resp.Err != nil {
			t.Fatalf("create ffr-two: %v %v", err, resp.Err)
		}
		waitKnown(t, c, "ffr-two")
		p := c.partitionState("ffr-two", 0)
		if len(p.Replicas) != 2 || racks[p.Replicas[0]-1] == racks[p.Replicas[1]-1] {
			t.Fatalf("ffr-two placed on %v, want two racks", p.Replicas)
		}
		leader, follower := int(p.Leader)-1, int(p.Replicas[1])-1
		lonely := racks[6-p.Replicas[0]-p.Replicas[1]-1] // the rack of the third node
		produceTo(t, cl, "ffr-two", 0, 0, 20)
		c.waitPartition("ffr-two", 0, func(raft.Partition) bool {
			p := c.brokers[follower].parts.get("ffr-two", 0)
			return p != nil && p.log.HighWatermark() == 20
		}, "the follower's high watermark at 20")
		if a := rawFetch(t, c, leader, 12, "ffr-two", 0, 0, 0, lonely, 0); a.PreferredReadReplica != -1 || a.records != 20 {
			t.Fatalf("leader, client in rack %s: preferred %d records %d", lonely, a.PreferredReadReplica, a.records)
		}
		before := []int64{reads(0), reads(1), reads(2)}
		wantSeq(t, consumeFrom(t, c, lonely, "ffr-two", 0, 0, 20), 0)
		if now := []int64{reads(0), reads(1), reads(2)}; !slices.Equal(now, before) {
			t.Fatalf("follower reads moved from %v to %v: the client left the leader", before, now)
		}
	})

	t.Run("read_committed on the follower", func(t *testing.T) {
		// Partition pb leads on node 2 (rack b); node 3 follows it in rack c.
		start := c.brokers[1].parts.get("ffr", pb).log.EndOffset()
		txn := c.client(kgo.TransactionalID("ffr-txn"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		for _, commit := range []bool{false, true} {
			if err := txn.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			produceTo(t, txn, "ffr", pb, 0, 3)
			if err := txn.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
				t.Fatalf("end transaction (commit %v): %v", commit, err)
			}
		}
		// One transaction stays open: the follower's LSO stops at it.
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		produceTo(t, txn, "ffr", pb, 100, 1)
		open := c.brokers[1].parts.get("ffr", pb).log.EndOffset() - 1
		c.waitPartition("ffr", pb, func(raft.Partition) bool {
			return c.brokers[2].parts.get("ffr", pb).log.HighWatermark() > open
		}, "node 3's high watermark past the open transaction")
		a := rawFetch(t, c, 2, 12, "ffr", pb, start, 0, "c", 1)
		if a.ErrorCode != 0 || a.LastStableOffset != open || len(a.AbortedTransactions) != 1 || a.AbortedTransactions[0].FirstOffset != start {
			t.Fatalf("follower read_committed: code %d lso %d (want %d) aborted %+v", a.ErrorCode, a.LastStableOffset, open, a.AbortedTransactions)
		}
		if a.last >= open {
			t.Fatalf("follower read_committed returned offset %d at or past its LSO %d", a.last, open)
		}
		before := reads(2)
		wantSeq(t, consumeFrom(t, c, "c", "ffr", pb, start, 3, kgo.FetchIsolationLevel(kgo.ReadCommitted())), 0)
		if reads(2) == before {
			t.Fatal("node 3 (rack c) served no read_committed reads")
		}
		if err := txn.EndTransaction(ctx, kgo.TryAbort); err != nil {
			t.Fatal(err)
		}
	})
}

// TestPreferredReadReplicaRules is Kafka's choice of a preferred read
// replica, one rule per row, on a leader (node 1, rack a) of replicas 1-5.
func TestPreferredReadReplicaRules(t *testing.T) {
	now := time.Now()
	brokers := map[int32]raft.Broker{
		1: {ID: 1, Rack: "a"}, 2: {ID: 2, Rack: "b"}, 3: {ID: 3, Rack: "b"}, 4: {ID: 4, Rack: "c"}, 5: {ID: 5, Rack: "b", Fenced: true},
	}
	type fol struct {
		leo, logStart int64
		caughtUp      time.Duration // ago
	}
	caught := map[int32]fol{2: {100, 0, 0}, 3: {100, 0, 0}, 4: {100, 0, 0}, 5: {100, 0, 0}}
	tests := []struct {
		name      string
		selector  string
		rack      string
		offset    int64
		isr       []int32
		followers map[int32]fol
		want      int32
	}{
		{"selector off", "", "b", 50, []int32{1, 2, 3, 4}, caught, -1},
		{"client names no rack", RackAwareSelector, "", 50, []int32{1, 2, 3, 4}, caught, -1},
		{"client in the leader's rack", RackAwareSelector, "a", 50, []int32{1, 2, 3, 4}, caught, -1},
		{"no replica in the client's rack", RackAwareSelector, "d", 50, []int32{1, 2, 3, 4}, caught, -1},
		{"tie: lowest id", RackAwareSelector, "b", 50, []int32{1, 2, 3, 4}, caught, 2},
		{"only ISR members", RackAwareSelector, "b", 50, []int32{1, 3, 4}, caught, 3},
		{"rack c", RackAwareSelector, "c", 50, []int32{1, 2, 3, 4}, caught, 4},
		{"highest log end wins", RackAwareSelector, "b", 50, []int32{1, 2, 3},
			map[int32]fol{2: {90, 0, 0}, 3: {120, 0, 0}}, 3},
		{"then most recently caught up", RackAwareSelector, "b", 50, []int32{1, 2, 3},
			map[int32]fol{2: {100, 0, 2 * time.Second}, 3: {100, 0, time.Second}}, 3},
		{"replica must hold the offset (log end)", RackAwareSelector, "b", 95, []int32{1, 2, 3},
			map[int32]fol{2: {90, 0, 0}, 3: {94, 0, 0}}, -1},
		{"replica must hold the offset (log start)", RackAwareSelector, "b", 50, []int32{1, 2, 3},
			map[int32]fol{2: {100, 60, 0}, 3: {100, 51, 0}}, -1},
		{"unknown log start counts as holding it", RackAwareSelector, "b", 50, []int32{1, 2},
			map[int32]fol{2: {100, -1, 0}}, 2},
		{"not fetched in this epoch", RackAwareSelector, "b", 0, []int32{1, 2},
			map[int32]fol{2: {-1, -1, 0}}, -1},
		{"fenced broker never", RackAwareSelector, "b", 50, []int32{1, 5}, caught, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.NodeID, cfg.Rack, cfg.ReplicaSelectorClass = 1, "a", tc.selector
			b := &Broker{cfg: cfg}
			p := &partition{topic: "t"}
			p.repl = replState{self: 1, leader: true, replicas: []int32{1, 2, 3, 4, 5}, isr: tc.isr, followers: map[int32]*followerState{}}
			for id, f := range tc.followers {
				p.repl.followers[id] = &followerState{leo: f.leo, logStart: f.logStart, caughtUp: now.Add(-f.caughtUp)}
			}
			if got := b.preferredReadReplica(&raft.State{Brokers: brokers}, p, tc.rack, tc.offset); got != tc.want {
				t.Fatalf("preferred %d, want %d", got, tc.want)
			}
		})
	}
}

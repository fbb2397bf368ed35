package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/raft"
	"github.com/stromhq/strom/storage"
)

// testCluster is a multi-node Strom cluster of in-process brokers on
// 127.0.0.1, each with its own data dir and raft port.
type testCluster struct {
	t       testing.TB
	cfgs    []Config
	brokers []*Broker // nil while stopped
}

// freeAddrs reserves n distinct free 127.0.0.1 ports (listen, note, close).
func freeAddrs(t testing.TB, n int) []string {
	t.Helper()
	var lns []net.Listener
	var out []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	for _, ln := range lns {
		ln.Close()
	}
	return out
}

// startTestCluster starts n brokers that form one cluster (static voters),
// in parallel as a real deployment does, returns once every one serves
// (unfenced), and stops them at test end.
func startTestCluster(t testing.TB, n int, mod func(*Config)) *testCluster {
	t.Helper()
	return startMixedCluster(t, n, n, mod)
}

// startMixedCluster is startTestCluster where only the first nVoters nodes
// are raft voters and the others broker-only nodes (process.roles=broker).
func startMixedCluster(t testing.TB, n, nVoters int, mod func(*Config)) *testCluster {
	t.Helper()
	// A raft port picked free can be taken before its node binds it (by
	// another test process, or as the source port of a connection between
	// the other nodes): the cluster then starts again on fresh ports.
	for attempt := 1; ; attempt++ {
		c, errs := tryStartMixedCluster(t, n, nVoters, mod)
		clash := false
		for _, err := range errs {
			clash = clash || (err != nil && strings.Contains(err.Error(), "address already in use"))
		}
		if clash && attempt < 3 {
			t.Logf("cluster start lost a port race (attempt %d): %v", attempt, errors.Join(errs...))
			for _, b := range c.brokers {
				if b != nil {
					_ = b.Close() // a half-formed cluster; its shutdown errors do not matter
				}
			}
			continue
		}
		t.Cleanup(c.stopAll)
		for i, err := range errs {
			if err != nil {
				t.Fatalf("start node %d: %v", i+1, err)
			}
		}
		return c
	}
}

// tryStartMixedCluster starts the nodes of startMixedCluster once and
// returns each node's start error; the caller stops what started.
func tryStartMixedCluster(t testing.TB, n, nVoters int, mod func(*Config)) (*testCluster, []error) {
	t.Helper()
	addrs := freeAddrs(t, n)
	var voters []raft.Voter
	for i, a := range addrs[:nVoters] {
		voters = append(voters, raft.Voter{ID: int32(i + 1), Addr: a})
	}
	c := &testCluster{t: t, brokers: make([]*Broker, n)}
	for i := range n {
		cfg := DefaultConfig()
		cfg.NodeID = int32(i + 1)
		cfg.DataDir = t.TempDir()
		cfg.Listen = "127.0.0.1:0"
		cfg.RaftListen = addrs[i]
		cfg.Voters = voters
		cfg.BrokerOnly = i >= nVoters
		cfg.BrokerSessionTimeout = 2 * time.Second
		cfg.ReplicaLagTimeMax = 5 * time.Second
		cfg.Fsync = "never"
		cfg.ShutdownTimeout = 5 * time.Second
		cfg.StartTimeout = 30 * time.Second
		cfg.OffsetsTopicPartitions = 3
		cfg.DefaultReplicationFactor = int16(n)
		cfg.OffsetsTopicReplicationFactor = int16(n)
		var w io.Writer = testLogWriter{t}
		cfg.Logger = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn})).With("node", i+1)
		if mod != nil {
			mod(&cfg)
		}
		c.cfgs = append(c.cfgs, cfg)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.brokers[i], errs[i] = Start(c.cfgs[i])
		}()
	}
	wg.Wait()
	return c, errs
}

// stop closes node i (a clean, controlled shutdown).
func (c *testCluster) stop(i int) {
	b := c.brokers[i]
	if b == nil {
		return
	}
	c.brokers[i] = nil
	if err := b.Close(); err != nil {
		c.t.Errorf("close node %d: %v", i+1, err)
	}
	if n := b.handlerPanics.Load(); n != 0 {
		c.t.Errorf("node %d: %d handler panics", i+1, n)
	}
}

// stopAll closes every running node at once. One after another, the last
// node would have no quorum left for its controlled shutdown and wait out
// the session timeout; together, each node's controlled shutdown runs
// while the others still form a quorum. Each Close is still checked.
func (c *testCluster) stopAll() {
	var wg sync.WaitGroup
	for i := range c.brokers {
		wg.Go(func() { c.stop(i) })
	}
	wg.Wait()
}

// restart starts node i again on its data dir.
func (c *testCluster) restart(i int) {
	c.t.Helper()
	b, err := Start(c.cfgs[i])
	if err != nil {
		c.t.Fatalf("restart node %d: %v", i+1, err)
	}
	c.brokers[i] = b
}

// client returns a kgo client seeded with every running node.
func (c *testCluster) client(opts ...kgo.Opt) *kgo.Client {
	c.t.Helper()
	var seeds []string
	for _, b := range c.brokers {
		if b != nil {
			seeds = append(seeds, b.Addr())
		}
	}
	opts = append([]kgo.Opt{kgo.SeedBrokers(seeds...), kgo.RetryTimeout(30 * time.Second),
		kgo.MetadataMinAge(50 * time.Millisecond)}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		c.t.Fatalf("new client: %v", err)
	}
	c.t.Cleanup(cl.Close)
	return cl
}

// partitionState is raft's record of one partition, read on a running node.
func (c *testCluster) partitionState(topic string, index int32) raft.Partition {
	for _, b := range c.brokers {
		if b != nil {
			// A node may not have applied the topic's creation yet.
			tp := b.node.State().Topics[topic]
			if tp == nil || int(index) >= len(tp.Partitions) {
				return raft.Partition{Leader: -1}
			}
			return tp.Partitions[index]
		}
	}
	c.t.Fatal("no node running")
	return raft.Partition{}
}

// waitPartition waits until ok holds for raft's record of topic/index.
func (c *testCluster) waitPartition(topic string, index int32, ok func(raft.Partition) bool, what string) {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := c.partitionState(topic, index)
		if ok(st) {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s-%d: no %s after 30s: %+v", topic, index, what, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logBytes returns every batch byte of node i's replica of topic/index, and
// its high watermark.
func (c *testCluster) logBytes(i int, topic string, index int32) ([]byte, int64, error) {
	p := c.brokers[i].parts.get(topic, index)
	if p == nil {
		return nil, -1, fmt.Errorf("node %d hosts no %s-%d", i+1, topic, index)
	}
	var out []byte
	for off := p.log.LogStartOffset(); off < p.log.EndOffset(); {
		sl, err := p.log.Read(off, 1<<20, p.log.EndOffset())
		if err != nil {
			return nil, -1, err
		}
		b, err := sl.Bytes()
		sl.Release()
		if err != nil {
			return nil, -1, err
		}
		if len(b) == 0 {
			break
		}
		out = append(out, b...)
		for rest := b; len(rest) > 0; {
			h, err := storage.ParseBatchHeader(rest)
			if err != nil || h.Size() > len(rest) {
				return nil, -1, fmt.Errorf("node %d: bad batch at %d: %v", i+1, off, err)
			}
			off = h.LastOffset() + 1
			rest = rest[h.Size():]
		}
	}
	return out, p.log.HighWatermark(), nil
}

// waitInSync waits until every replica of topic/index is in the ISR and
// holds the same bytes with the high watermark at the log end.
func (c *testCluster) waitInSync(topic string, index int32, replicas int) []byte {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var why string
	for time.Now().Before(deadline) {
		why = ""
		st := c.partitionState(topic, index)
		if len(st.ISR) != replicas {
			why = fmt.Sprintf("ISR %v", st.ISR)
		}
		var want []byte
		for i, b := range c.brokers {
			if b == nil || why != "" {
				continue
			}
			got, hw, err := c.logBytes(i, topic, index)
			if err != nil {
				why = err.Error()
				break
			}
			p := b.parts.get(topic, index)
			if hw != p.log.EndOffset() {
				why = fmt.Sprintf("node %d: high watermark %d, log end %d", i+1, hw, p.log.EndOffset())
				break
			}
			if want == nil {
				want = got
			} else if !bytes.Equal(want, got) {
				why = fmt.Sprintf("node %d: %d log bytes differ from the first node's %d", i+1, len(got), len(want))
				break
			}
		}
		if why == "" {
			return want
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("%s-%d not in sync after 30s: %s", topic, index, why)
	return nil
}

func produceSeq(t testing.TB, cl *kgo.Client, topic string, from, n int) {
	t.Helper()
	ctx := testCtx(t)
	var recs []*kgo.Record
	for i := from; i < from+n; i++ {
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("k%d", i%7)), Value: []byte(fmt.Sprintf("v%06d", i))})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce %d..%d: %v", from, from+n, err)
	}
}

// consumeValues reads n records of topic from the start.
func consumeValues(t testing.TB, c *testCluster, topic string, n int) []string {
	t.Helper()
	cl := c.client(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx := testCtx(t)
	var out []string
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records: %v", len(out), n, ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s-%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) { out = append(out, string(r.Value)) })
	}
	return out
}

func createReplicated(t testing.TB, c *testCluster, topic string, parts int32, minISR string) {
	t.Helper()
	adm := kadm.NewClient(c.client())
	resp, err := adm.CreateTopic(testCtx(t), parts, 3, map[string]*string{"min.insync.replicas": &minISR}, topic)
	if err != nil || resp.Err != nil {
		t.Fatalf("create %s: %v %v", topic, err, resp.Err)
	}
}

// TestReplicationCopiesEveryRecord: acks=all records reach every replica
// byte for byte, with fsync on, and are read back from the leaders.
func TestReplicationCopiesEveryRecord(t *testing.T) {
	t.Parallel()
	c := startTestCluster(t, 3, func(cfg *Config) { cfg.Fsync = "always" })
	createReplicated(t, c, "copied", 3, "2")
	cl := c.client()
	produceSeq(t, cl, "copied", 0, 600)
	for p := range int32(3) {
		if b := c.waitInSync("copied", p, 3); len(b) == 0 {
			t.Fatalf("partition %d is empty", p)
		}
	}
	got := consumeValues(t, c, "copied", 600)
	slices.Sort(got)
	for i, v := range got {
		if want := fmt.Sprintf("v%06d", i); v != want {
			t.Fatalf("record %d: %q, want %q", i, v, want)
		}
	}
}

// TestReplicationLeaderFailover: the leader stops; acks=all writes go on with
// the two others (min.insync.replicas=2); it comes back, catches up, rejoins
// the ISR; nothing acknowledged is lost or duplicated.
func TestReplicationLeaderFailover(t *testing.T) {
	t.Parallel()
	c := startTestCluster(t, 3, nil)
	createReplicated(t, c, "failover", 1, "2")
	cl := c.client()
	produceSeq(t, cl, "failover", 0, 100)
	leader := int(c.partitionState("failover", 0).Leader) - 1
	c.stop(leader)
	c.waitPartition("failover", 0, func(st raft.Partition) bool {
		return int(st.Leader)-1 != leader && st.Leader >= 0 && !slices.Contains(st.ISR, int32(leader+1))
	}, "leadership and ISR off the stopped node")
	produceSeq(t, c.client(), "failover", 100, 100)
	c.restart(leader)
	c.waitInSync("failover", 0, 3)
	got := consumeValues(t, c, "failover", 200)
	for i, v := range got {
		if want := fmt.Sprintf("v%06d", i); v != want {
			t.Fatalf("record %d: %q, want %q (of %d)", i, v, want, len(got))
		}
	}
}

// TestReplicationTruncatesDivergentLog is deterministic fault injection: the
// followers are held, so acks=1 records reach only the leader; the leader
// stops, a follower takes over and takes new writes; the old leader comes
// back as a follower and must drop its unreplicated records (diverging epoch)
// and copy the new leader's.
func TestReplicationTruncatesDivergentLog(t *testing.T) {
	t.Parallel()
	c := startTestCluster(t, 3, func(cfg *Config) { cfg.ReplicaLagTimeMax = time.Minute })
	createReplicated(t, c, "diverge", 1, "1")
	produceSeq(t, c.client(), "diverge", 0, 50)
	c.waitInSync("diverge", 0, 3)
	leader := int(c.partitionState("diverge", 0).Leader) - 1
	// A fetch parked at the leader when the hold began would still bring
	// back a record: pauseFetchers waits until none is in flight.
	c.pauseFetchers(int32(leader + 1))
	acks1 := c.client(kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	ctx := testCtx(t)
	for i := range 30 {
		r := &kgo.Record{Topic: "diverge", Value: []byte(fmt.Sprintf("lost%03d", i))}
		if err := acks1.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("acks=1 produce: %v", err)
		}
	}
	if leo := c.brokers[leader].parts.get("diverge", 0).log.EndOffset(); leo != 80 {
		t.Fatalf("old leader's log end %d, want 80", leo)
	}
	c.stop(leader)
	for _, b := range c.brokers {
		if b != nil {
			b.fetchers.hold.Store(false)
		}
	}
	c.waitPartition("diverge", 0, func(st raft.Partition) bool {
		return int(st.Leader)-1 != leader && st.Leader >= 0
	}, "leadership off the stopped node")
	produceSeq(t, c.client(), "diverge", 50, 20)
	c.restart(leader)
	c.waitInSync("diverge", 0, 3)
	if leo := c.brokers[leader].parts.get("diverge", 0).log.EndOffset(); leo != 70 {
		t.Fatalf("old leader's log end %d after catching up, want 70", leo)
	}
	got := consumeValues(t, c, "diverge", 70)
	for i, v := range got {
		if want := fmt.Sprintf("v%06d", i); v != want {
			t.Fatalf("record %d: %q, want %q", i, v, want)
		}
	}
}

// TestReplicationISRShrinksAndExpands: a follower that stops fetching leaves
// the ISR after replica.lag.time.max.ms, acks=all then needs only the others
// (and fails with NOT_ENOUGH_REPLICAS once the ISR is below
// min.insync.replicas); when it fetches again it catches up and rejoins.
func TestReplicationISRShrinksAndExpands(t *testing.T) {
	t.Parallel()
	c := startTestCluster(t, 3, func(cfg *Config) { cfg.ReplicaLagTimeMax = 500 * time.Millisecond })
	createReplicated(t, c, "lag", 1, "2")
	produceSeq(t, c.client(), "lag", 0, 10)
	c.waitInSync("lag", 0, 3)
	leader := int(c.partitionState("lag", 0).Leader) - 1
	slow, other := (leader+1)%3, (leader+2)%3
	c.brokers[slow].fetchers.hold.Store(true)
	c.waitPartition("lag", 0, func(st raft.Partition) bool { return !slices.Contains(st.ISR, int32(slow+1)) },
		"the held follower out of the ISR")
	produceSeq(t, c.client(), "lag", 10, 10)

	// With the second follower held too the ISR shrinks to the leader,
	// below min.insync.replicas=2.
	c.brokers[other].fetchers.hold.Store(true)
	c.waitPartition("lag", 0, func(st raft.Partition) bool { return len(st.ISR) == 1 }, "an ISR of the leader alone")
	// The leader must have applied the shrink too: with its old ISR it would
	// append the record and answer NOT_ENOUGH_REPLICAS_AFTER_APPEND once the
	// shrink lands, which an idempotent client may retry forever.
	lp := c.brokers[leader].parts.get("lag", 0)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		lp.repl.mu.Lock()
		n := len(lp.repl.isr)
		lp.repl.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the leader's own ISR still has %d members", n)
		}
	}
	// Not idempotent, so RecordRetries(0) fails the record whatever the
	// answer: a wrong one fails the test instead of hanging it.
	cl := c.client(kgo.RecordRetries(0), kgo.RequestRetries(0), kgo.DisableIdempotentWrite())
	err := cl.ProduceSync(testCtx(t), &kgo.Record{Topic: "lag", Value: []byte("refused")}).FirstErr()
	if !errors.Is(err, kerr.NotEnoughReplicas) {
		t.Fatalf("acks=all with an ISR below min.insync.replicas: %v, want NOT_ENOUGH_REPLICAS", err)
	}

	c.brokers[slow].fetchers.hold.Store(false)
	c.brokers[other].fetchers.hold.Store(false)
	c.waitInSync("lag", 0, 3)
	produceSeq(t, c.client(), "lag", 20, 10)
	got := consumeValues(t, c, "lag", 30)
	for i, v := range got {
		if want := fmt.Sprintf("v%06d", i); v != want {
			t.Fatalf("record %d: %q, want %q", i, v, want)
		}
	}
}

// TestWaitHWLeadershipLost: an acks=all write waiting for the high watermark
// is acknowledged only while this replica still leads the write's epoch.
// Once it follows, its high watermark comes from the new leader's log, which
// need not hold the write, and every end but the deadline is the
// possibly-written errUnconfirmedAppend, never NOT_LEADER_OR_FOLLOWER, which
// clients read as "not written".
func TestWaitHWLeadershipLost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		isr   int
		event func(p *partition, stop chan struct{}, cancel context.CancelFunc)
		want  *kerr.Error
	}{
		{"replicated while leading", 2, func(p *partition, _ chan struct{}, _ context.CancelFunc) { p.advanceHW(1) }, nil},
		{"replicated, ISR below min.insync.replicas", 1, func(p *partition, _ chan struct{}, _ context.CancelFunc) { p.advanceHW(1) },
			kerr.NotEnoughReplicasAfterAppend},
		{"follower's high watermark passes the write", 2, func(p *partition, _ chan struct{}, _ context.CancelFunc) {
			p.stopLeading()
			p.advanceHW(5) // the new leader's log, whatever it holds at offset 0
		}, errUnconfirmedAppend},
		{"leadership lost first", 2, func(p *partition, _ chan struct{}, _ context.CancelFunc) {
			p.stopLeading()
			p.wake()
		}, errUnconfirmedAppend},
		{"broker stopping", 2, func(_ *partition, stop chan struct{}, _ context.CancelFunc) { close(stop) }, errUnconfirmedAppend},
		{"deadline", 2, func(_ *partition, _ chan struct{}, cancel context.CancelFunc) { cancel() }, kerr.RequestTimedOut},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lg, err := storage.Open(t.TempDir(), storage.DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = lg.Close() })
			if _, err := lg.Append(mkBatch(1, time.Now().UnixMilli(), nil)); err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			p := &partition{log: lg, stopping: stop}
			p.cfg.Store(&partConfig{minISR: 2})
			p.repl.leader, p.repl.epoch = true, 3
			p.repl.isr = []int32{1, 2}[:tt.isr]
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan *kerr.Error, 1)
			go func() { done <- p.waitHW(ctx, 0, 3) }()
			// The wait parks (nothing is replicated yet) before the event.
			select {
			case e := <-done:
				t.Fatalf("waitHW returned %v before anything happened", e)
			case <-time.After(20 * time.Millisecond):
			}
			tt.event(p, stop, cancel)
			select {
			case e := <-done:
				if e != tt.want {
					t.Fatalf("waitHW = %v, want %v", e, tt.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("waitHW still waiting 10s after the event")
			}
		})
	}
}

// stalledLeader is an empty partition led by replica 1 in epoch 3, with
// replica 2 in the ISR that never fetches: nothing appended to it reaches the
// high watermark.
func stalledLeader(t *testing.T) *partition {
	t.Helper()
	sc := storage.DefaultConfig()
	sc.Fsync = storage.FsyncNever
	lg, err := storage.Open(t.TempDir(), sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lg.Close() })
	p := &partition{log: lg, stopping: make(chan struct{})}
	p.cfg.Store(&partConfig{minISR: 1, store: sc})
	p.repl.leader, p.repl.epoch, p.repl.self = true, 3, 1
	p.repl.isr = []int32{1, 2}
	p.leaderEpoch.Store(3)
	return p
}

// TestInternalWriteKeepsItsEpoch: a coordinator's write is acknowledged only
// by a leader still in the epoch it was appended in. Had leadership moved
// away and back meanwhile, the interim leader may have truncated the write,
// and the high watermark of the new epoch passing its offset proves nothing.
func TestInternalWriteKeepsItsEpoch(t *testing.T) {
	t.Parallel()
	p := stalledLeader(t)
	w, err := appendInternal(p, mkBatch(1, time.Now().UnixMilli(), nil))
	if err != nil {
		t.Fatal(err)
	}
	if w.epoch != 3 || w.last != 0 {
		t.Fatalf("write = offset %d epoch %d, want offset 0 epoch 3", w.last, w.epoch)
	}
	// Another replica led epoch 4; this one leads again in epoch 5, and
	// that epoch's high watermark passes offset 0.
	p.repl.mu.Lock()
	p.repl.epoch = 5
	p.repl.mu.Unlock()
	p.leaderEpoch.Store(5)
	p.advanceHW(1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.durable(ctx); !errors.Is(err, errUnconfirmedAppend) {
		t.Fatalf("durable after leadership came back in a new epoch: %v, want %v", err, errUnconfirmedAppend)
	}
}

// TestWaitBarriersSharesOneDeadline: an answer with several barriers that
// cannot replicate (the follower never fetches), as an OffsetFetch naming
// several groups during a follower stall, waits one timeout in all rather
// than one per barrier, and fails each of them retriably.
func TestWaitBarriersSharesOneDeadline(t *testing.T) {
	t.Parallel()
	var barriers []internalWrite
	for range 3 {
		w, err := appendInternal(stalledLeader(t), mkBatch(1, time.Now().UnixMilli(), nil))
		if err != nil {
			t.Fatal(err)
		}
		barriers = append(barriers, w)
	}
	barriers = append(barriers, noWrite)
	const timeout = 400 * time.Millisecond
	failed := map[int]*kerr.Error{}
	start := time.Now()
	waitBarriers(context.Background(), barriers, timeout, func(i int, e *kerr.Error) { failed[i] = e })
	// Waited in turn, each barrier would take the whole timeout: 3x.
	if elapsed := time.Since(start); elapsed >= 3*timeout {
		t.Errorf("three stalled barriers took %v; one timeout is %v", elapsed, timeout)
	}
	want := map[int]*kerr.Error{0: kerr.CoordinatorNotAvailable, 1: kerr.CoordinatorNotAvailable, 2: kerr.CoordinatorNotAvailable}
	if !maps.Equal(failed, want) {
		t.Errorf("failed barriers %v, want %v", failed, want)
	}
}

// TestDeleteRecordsWaitsForFollowers: DeleteRecords on a replicated
// partition answers once every live replica's log start has reached the
// new one (Kafka's low watermark), so the records cannot come back with a
// failover; with a follower frozen it answers REQUEST_TIMED_OUT with the
// low watermark so far.
func TestDeleteRecordsWaitsForFollowers(t *testing.T) {
	t.Parallel()
	c := startTestCluster(t, 3, nil)
	createReplicated(t, c, "dr", 1, "1")
	cl := c.client()
	produceSeq(t, cl, "dr", 0, 50)
	c.waitInSync("dr", 0, 3)
	leader := c.partitionState("dr", 0).Leader
	ctx := testCtx(t)
	deleteBefore := func(offset int64, timeout time.Duration) (int64, error) {
		req := kmsg.NewPtrDeleteRecordsRequest()
		req.TimeoutMillis = int32(timeout.Milliseconds())
		rt := kmsg.NewDeleteRecordsRequestTopic()
		rt.Topic = "dr"
		rp := kmsg.NewDeleteRecordsRequestTopicPartition()
		rp.Partition, rp.Offset = 0, offset
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return -1, err
		}
		out := resp.Topics[0].Partitions[0]
		return out.LowWatermark, kerr.ErrorForCode(out.ErrorCode)
	}

	release := c.holdFollowers("dr", 0, leader)
	low, err := deleteBefore(20, 300*time.Millisecond)
	if !errors.Is(err, kerr.RequestTimedOut) || low != 0 {
		t.Fatalf("delete before 20 with the followers frozen: low watermark %d, %v; want 0, %v", low, err, kerr.RequestTimedOut)
	}
	if start := c.brokers[leader-1].parts.get("dr", 0).log.LogStartOffset(); start != 20 {
		t.Fatalf("leader's log start %d after the timed-out delete, want 20", start)
	}
	type result struct {
		low int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		low, err := deleteBefore(30, 20*time.Second)
		done <- result{low, err}
	}()
	select {
	case r := <-done:
		t.Fatalf("delete before 30 answered (%d, %v) while the followers were frozen", r.low, r.err)
	case <-time.After(300 * time.Millisecond):
	}
	release()
	r := <-done
	if r.err != nil || r.low != 30 {
		t.Fatalf("delete before 30 after the release: low watermark %d, %v; want 30", r.low, r.err)
	}
	for i, b := range c.brokers {
		if start := b.parts.get("dr", 0).log.LogStartOffset(); start < 30 {
			t.Fatalf("node %d's log start %d when the delete was answered, want >= 30", i+1, start)
		}
	}
}

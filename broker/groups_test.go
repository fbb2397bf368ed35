package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// groupTestConfig makes group timers short enough for tests: members are
// removed after 1.5 s of silence and the first rebalance waits 100 ms.
func groupTestConfig(c *Config) {
	c.GroupInitialRebalanceDelay = 100 * time.Millisecond
	c.GroupMinSessionTimeout = 500 * time.Millisecond
	c.OffsetsTopicPartitions = 5
	c.ConsumerGroupSessionTimeout = 1500 * time.Millisecond
	c.ConsumerGroupHeartbeatInterval = 200 * time.Millisecond
}

// killSwitch is a kgo dialer whose connections can all be cut at once and
// which refuses new ones afterwards: a client "killed" without a LeaveGroup.
type killSwitch struct {
	mu     sync.Mutex
	killed bool
	conns  []net.Conn
}

func (k *killSwitch) dial(ctx context.Context, network, host string) (net.Conn, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.killed {
		return nil, errors.New("killed")
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, host)
	if err == nil {
		k.conns = append(k.conns, c)
	}
	return c, err
}

func (k *killSwitch) kill() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.killed = true
	for _, c := range k.conns {
		_ = c.Close()
	}
}

// ledger counts, per record value, the successful commits that covered it:
// a record is consumed when the synchronous commit after its poll
// succeeded. Exactly-once means every value ends with count 1.
type ledger struct {
	mu     sync.Mutex
	counts map[string]int
	total  int
	change chan struct{}
}

func newLedger() *ledger { return &ledger{counts: map[string]int{}, change: make(chan struct{}, 1)} }

func (l *ledger) add(recs []*kgo.Record) {
	l.mu.Lock()
	for _, r := range recs {
		l.counts[string(r.Value)]++
		l.total++
	}
	l.mu.Unlock()
	select {
	case l.change <- struct{}{}:
	default:
	}
}

// waitFor blocks until n distinct values were consumed; it fails the test
// after a generous bound (a hang, not a performance check).
func (l *ledger) waitFor(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		l.mu.Lock()
		got := len(l.counts)
		l.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-l.change:
		case <-deadline:
			t.Fatalf("consumed %d distinct records, want %d", got, n)
		}
	}
}

// groupConsumer is one member polling in its own goroutine; it commits
// synchronously after every poll before allowing a rebalance.
type groupConsumer struct {
	cl   *kgo.Client
	ks   *killSwitch
	done chan struct{}
	stop context.CancelFunc
}

func startGroupConsumer(t *testing.T, b *Broker, groupID, topic string, balancer kgo.GroupBalancer, l *ledger, extra ...kgo.Opt) *groupConsumer {
	t.Helper()
	ks := &killSwitch{}
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(b.Addr()), kgo.Dialer(ks.dial),
		kgo.ConsumerGroup(groupID), kgo.ConsumeTopics(topic), kgo.Balancers(balancer),
		kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(1500 * time.Millisecond), kgo.HeartbeatInterval(200 * time.Millisecond),
		kgo.RebalanceTimeout(5 * time.Second), kgo.RetryTimeout(5 * time.Second),
		// kgo's default backoff grows to 2.5 s; a member retrying its join
		// across a broker restart would sit out most of that.
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500 * time.Millisecond),
	}, extra...)...)
	if err != nil {
		t.Fatalf("new consumer: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	gc := &groupConsumer{cl: cl, ks: ks, done: make(chan struct{}), stop: cancel}
	go func() {
		defer close(gc.done)
		for ctx.Err() == nil {
			pctx, pcancel := context.WithTimeout(ctx, 500*time.Millisecond)
			fs := cl.PollFetches(pctx)
			pcancel()
			recs := fs.Records()
			if len(recs) > 0 {
				if err := cl.CommitRecords(ctx, recs...); err == nil {
					l.add(recs)
				}
			}
			cl.AllowRebalance()
		}
	}()
	return gc
}

// leave stops polling and closes the client (LeaveGroup).
func (gc *groupConsumer) leave() {
	gc.stop()
	<-gc.done
	gc.cl.Close()
}

// kill cuts the client off without a LeaveGroup; the broker must notice
// through the session timeout.
func (gc *groupConsumer) kill() {
	gc.ks.kill()
	gc.stop()
	<-gc.done
	gc.cl.Close()
}

func produceValues(t *testing.T, cl *kgo.Client, topic string, from, to int) {
	t.Helper()
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(strconv.Itoa(i % 17)), Value: []byte(strconv.Itoa(i))})
	}
	if err := cl.ProduceSync(testCtx(t), recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// waitMembers waits until the group is Stable with n members that all hold
// partitions (DescribeGroups for classic groups, ConsumerGroupDescribe for
// KIP-848 groups).
func waitMembers(t *testing.T, adm *kadm.Client, groupID string, n int, kip848 bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var state string
		var members int
		ok := false
		if kip848 {
			dg, err := adm.DescribeConsumerGroups(testCtx(t), groupID)
			if err == nil {
				g := dg[groupID]
				state, members = g.State, len(g.Members)
				ok = g.Err == nil && g.State == "Stable" && len(g.Members) == n
				for _, m := range g.Members {
					ok = ok && len(m.Assignment) > 0
				}
			}
		} else {
			dg, err := adm.DescribeGroups(testCtx(t), groupID)
			if err == nil {
				g := dg[groupID]
				state, members = g.State, len(g.Members)
				ok = g.State == "Stable" && len(g.Members) == n
				for _, m := range g.Members {
					ca, isConsumer := m.Assigned.AsConsumer()
					ok = ok && isConsumer && len(ca.Topics) > 0 && len(ca.Topics[0].Partitions) > 0
				}
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s: state %s with %d members, want Stable with %d holding partitions", groupID, state, members, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestConsumerGroupExactlyOnce runs a group through joins, a leave and a
// kill, for an eager and a cooperative balancer, and checks that the
// members together consumed every record exactly once.
func TestConsumerGroupExactlyOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		balancer kgo.GroupBalancer
		opts     []kgo.Opt
	}{
		{"range-eager", kgo.RangeBalancer(), nil},
		{"cooperative-sticky", kgo.CooperativeStickyBalancer(), nil},
		// KIP-848: the broker assigns ("range" and "uniform").
		{"kip848-range", kgo.RangeBalancer(), []kgo.Opt{kgo.ServerSideBalancer()}},
		{"kip848-uniform", kgo.StickyBalancer(), []kgo.Opt{kgo.ServerSideBalancer()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := startTestBroker(t, groupTestConfig)
			adm := newAdmin(t, b)
			createTopic(t, adm, "t", 6, nil)
			prod := newClient(t, b)
			l := newLedger()
			const step = 300
			produceValues(t, prod, "t", 0, step)

			c1 := startGroupConsumer(t, b, "g", "t", tc.balancer, l, tc.opts...)
			c2 := startGroupConsumer(t, b, "g", "t", tc.balancer, l, tc.opts...)
			c3 := startGroupConsumer(t, b, "g", "t", tc.balancer, l, tc.opts...)
			waitMembers(t, adm, "g", 3, tc.opts != nil)
			l.waitFor(t, step)

			c2.leave() // LeaveGroup: the others take over its partitions
			produceValues(t, prod, "t", step, 2*step)
			waitMembers(t, adm, "g", 2, tc.opts != nil)
			l.waitFor(t, 2*step)

			c4 := startGroupConsumer(t, b, "g", "t", tc.balancer, l, tc.opts...)
			waitMembers(t, adm, "g", 3, tc.opts != nil)
			c3.kill() // no LeaveGroup: removed by the session timeout
			produceValues(t, prod, "t", 2*step, 3*step)
			waitMembers(t, adm, "g", 2, tc.opts != nil)
			l.waitFor(t, 3*step)

			c1.leave()
			c4.leave()
			l.mu.Lock()
			defer l.mu.Unlock()
			for i := range 3 * step {
				if n := l.counts[strconv.Itoa(i)]; n != 1 {
					t.Errorf("record %d consumed %d times", i, n)
				}
			}
			// Every committed position is the end of its partition.
			offs, err := adm.FetchOffsets(testCtx(t), "g")
			if err != nil {
				t.Fatalf("fetch offsets: %v", err)
			}
			ends, err := adm.ListEndOffsets(testCtx(t), "t")
			if err != nil {
				t.Fatalf("end offsets: %v", err)
			}
			ends.Each(func(e kadm.ListedOffset) {
				if o, ok := offs.Lookup("t", e.Partition); !ok || o.At != e.Offset {
					t.Errorf("partition %d: committed %v, end %d", e.Partition, o.At, e.Offset)
				}
			})
			lg, err := adm.ListGroups(testCtx(t))
			if err != nil || lg["g"].State != "Empty" {
				t.Errorf("group after everyone left: %+v %v", lg["g"], err)
			}
		})
	}
}

// TestGroupSurvivesRestart commits offsets, restarts the broker on the
// same data dir, and checks that the group and its offsets are back and
// that a member of the old generation can go on heartbeating.
func TestGroupSurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mod := func(c *Config) { groupTestConfig(c); c.DataDir = dir; c.Fsync = "always" }
	b := startTestBroker(t, mod)
	adm := newAdmin(t, b)
	createTopic(t, adm, "t", 3, nil)
	prod := newClient(t, b)
	produceValues(t, prod, "t", 0, 90)

	l := newLedger()
	c := startGroupConsumer(t, b, "g", "t", kgo.RangeBalancer(), l)
	l.waitFor(t, 90)
	c.leave()
	// A simple consumer's commit with metadata and leader epoch.
	if _, err := adm.CommitOffsets(testCtx(t), "simple", kadm.OffsetsFromRecords(kgo.Record{Topic: "t", Partition: 1, Offset: 41, LeaderEpoch: 0})); err != nil {
		t.Fatalf("simple commit: %v", err)
	}
	before, err := adm.FetchOffsets(testCtx(t), "g")
	if err != nil || len(before) == 0 {
		t.Fatalf("offsets before restart: %v %v", before, err)
	}
	// A hand-driven member left in Stable at generation 2 (after "g"'s
	// empty generation it is a fresh group "static").
	member, gen := joinRawMember(t, b, "kept")
	if err := b.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	b2 := startTestBroker(t, mod)
	adm2 := newAdmin(t, b2)
	after, err := adm2.FetchOffsets(testCtx(t), "g")
	if err != nil {
		t.Fatalf("offsets after restart: %v", err)
	}
	before.Each(func(o kadm.OffsetResponse) {
		a, ok := after.Lookup(o.Topic, o.Partition)
		if !ok || a.At != o.At || a.Metadata != o.Metadata {
			t.Errorf("%s/%d: before %+v after %+v", o.Topic, o.Partition, o.Offset, a.Offset)
		}
	})
	simple, err := adm2.FetchOffsets(testCtx(t), "simple")
	if o, ok := simple.Lookup("t", 1); err != nil || !ok || o.At != 42 || o.LeaderEpoch != 0 {
		t.Errorf("simple offset after restart: %+v %v", o, err)
	}
	dg, err := adm2.DescribeGroups(testCtx(t), "g", "kept")
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	if dg["g"].State != "Empty" || dg["kept"].State != "Stable" || len(dg["kept"].Members) != 1 {
		t.Errorf("groups after restart: g %s, kept %s with %d members", dg["g"].State, dg["kept"].State, len(dg["kept"].Members))
	}
	if code := heartbeatRaw(t, b2, "kept", member, gen); code != 0 {
		t.Errorf("heartbeat of restored member: error %d", code)
	}

	// A new member resumes after the committed offsets.
	produceValues(t, newClient(t, b2), "t", 90, 120)
	l2 := newLedger()
	c2 := startGroupConsumer(t, b2, "g", "t", kgo.RangeBalancer(), l2)
	l2.waitFor(t, 30)
	c2.leave()
	l2.mu.Lock()
	defer l2.mu.Unlock()
	for v, n := range l2.counts {
		if i, _ := strconv.Atoi(v); i < 90 || n != 1 {
			t.Errorf("after restart consumed %s %d times", v, n)
		}
	}
	if len(l2.counts) != 30 {
		t.Errorf("after restart consumed %d records, want 30", len(l2.counts))
	}
}

func ExampleConfig_groups() {
	cfg := DefaultConfig()
	fmt.Println(cfg.GroupInitialRebalanceDelay, cfg.OffsetsTopicPartitions)
	// Output: 3s 50
}

// freePort returns a loopback port that was free a moment ago, so a
// restarted broker can listen where its clients expect it.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// TestGroupMembersRejoinAfterRestart keeps consumers running while the
// broker restarts on the same address and data dir: the members find the
// coordinator again (restored classic and KIP-848 groups take their
// heartbeats), and every record is still consumed exactly once.
func TestGroupMembersRejoinAfterRestart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		balancer kgo.GroupBalancer
		opts     []kgo.Opt
	}{
		{"cooperative-sticky", kgo.CooperativeStickyBalancer(), nil},
		{"kip848-uniform", kgo.StickyBalancer(), []kgo.Opt{kgo.ServerSideBalancer()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir, addr := t.TempDir(), freePort(t)
			mod := func(c *Config) { groupTestConfig(c); c.DataDir, c.Listen, c.Fsync = dir, addr, "always" }
			b := startTestBroker(t, mod)
			adm := newAdmin(t, b)
			createTopic(t, adm, "t", 4, nil)
			prod := newClient(t, b)
			l := newLedger()
			produceValues(t, prod, "t", 0, 200)
			c1 := startGroupConsumer(t, b, "g", "t", tc.balancer, l, tc.opts...)
			c2 := startGroupConsumer(t, b, "g", "t", tc.balancer, l, tc.opts...)
			l.waitFor(t, 200)
			if err := b.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			b2 := startTestBroker(t, mod)
			produceValues(t, newClient(t, b2), "t", 200, 400)
			waitMembers(t, newAdmin(t, b2), "g", 2, tc.opts != nil)
			l.waitFor(t, 400)
			c1.leave()
			c2.leave()
			l.mu.Lock()
			defer l.mu.Unlock()
			for i := range 400 {
				if n := l.counts[strconv.Itoa(i)]; n != 1 {
					t.Errorf("record %d consumed %d times", i, n)
				}
			}
		})
	}
}

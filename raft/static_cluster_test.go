package raft

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// freeAddrs returns n 127.0.0.1 addresses whose ports were free a moment
// ago: static voters must be known before any node opens.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	var lns []net.Listener
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

// staticCluster is a cluster of nodes bootstrapped from one voter list, as
// `strom serve --controller-quorum-voters` forms it.
type staticCluster struct {
	t       *testing.T
	voters  []Voter
	dirs    []string
	session time.Duration
	tls     []*tls.Config // per node, nil: plain TCP
	nodes   []*Node       // nil while a node is down
}

func newStaticCluster(t *testing.T, size int, session time.Duration) *staticCluster {
	t.Helper()
	return newStaticClusterTLS(t, size, session, nil)
}

// newStaticClusterTLS is newStaticCluster with node i's raft port secured
// by tlsFor(i) (nil tlsFor: plain TCP).
func newStaticClusterTLS(t *testing.T, size int, session time.Duration, tlsFor func(i int) *tls.Config) *staticCluster {
	t.Helper()
	addrs := freeAddrs(t, size)
	c := &staticCluster{t: t, session: session, nodes: make([]*Node, size), tls: make([]*tls.Config, size)}
	if tlsFor != nil {
		for i := range size {
			c.tls[i] = tlsFor(i)
		}
	}
	for i, a := range addrs {
		c.voters = append(c.voters, Voter{ID: int32(i + 1), Addr: a})
		c.dirs = append(c.dirs, t.TempDir())
	}
	// Started in parallel, as a cluster's processes are: Open returns at once.
	var wg sync.WaitGroup
	errs := make([]error, size)
	for i := range size {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.nodes[i], errs[i] = c.open(i)
		}()
	}
	wg.Wait()
	t.Cleanup(c.closeAll)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open node %d: %v", i+1, err)
		}
	}
	ctx := testCtx(t)
	for _, n := range c.nodes {
		if err := n.WaitLeader(ctx); err != nil {
			t.Fatalf("node %d: %v", n.ID(), err)
		}
	}
	return c
}

func (c *staticCluster) open(i int) (*Node, error) {
	return Open(Config{NodeID: int32(i + 1), DataDir: c.dirs[i], BindAddr: c.voters[i].Addr, Voters: c.voters,
		BrokerSessionTimeout: c.session, Logger: testLogger(), TLS: c.tls[i],
		HeartbeatTimeout: 200 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond, LeaderLeaseTimeout: 100 * time.Millisecond})
}

func (c *staticCluster) live() []*Node {
	var out []*Node
	for _, n := range c.nodes {
		if n != nil {
			out = append(out, n)
		}
	}
	return out
}

func (c *staticCluster) closeAll() {
	for i, n := range c.nodes {
		if n != nil {
			_ = n.Close()
			c.nodes[i] = nil
		}
	}
}

func (c *staticCluster) leader() *Node {
	for _, n := range c.live() {
		if n.IsLeader() {
			return n
		}
	}
	return nil
}

// follower returns a live node that does not lead (at the moment of the call).
func (c *staticCluster) follower(ctx context.Context) *Node {
	c.t.Helper()
	for ctx.Err() == nil {
		if l := c.leader(); l != nil {
			for _, n := range c.live() {
				if n != l {
					return n
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Fatal("no leader and follower")
	return nil
}

func TestStaticVotersApplyFromAnyNode(t *testing.T) {
	base := runtime.NumGoroutine()
	ctx := testCtx(t)
	c := newStaticCluster(t, 3, 0)
	// Every node bootstrapped the same configuration.
	for _, n := range c.nodes {
		srv, err := n.Servers()
		if err != nil || len(srv) != 3 {
			t.Fatalf("node %d servers %v %v", n.ID(), srv, err)
		}
	}
	cluster := c.nodes[0].State().ClusterID
	for _, n := range c.nodes {
		if s := n.State(); s.ClusterID != cluster || s.ClusterID == "" {
			t.Fatalf("node %d cluster id %q, node 1 %q", n.ID(), s.ClusterID, cluster)
		}
	}

	// Apply on a follower: its own state has the command on return.
	f := c.follower(ctx)
	ct := CreateTopic{Topic: topic("t", idA, 2, 1, 2, 3)}
	res, err := f.Apply(ctx, ct)
	if err != nil {
		t.Fatalf("apply on follower %d: %v", f.ID(), err)
	}
	if s := f.State(); s.Version < res.Index || s.Topics["t"] == nil {
		t.Fatalf("follower state after apply: version %d, index %d, topic %v", s.Version, res.Index, s.Topics["t"])
	}
	// Results come back: a broker epoch, a producer-id block.
	reg, err := f.Apply(ctx, RegisterBroker{ID: 7, Host: "h", Port: 1, IncarnationID: idB})
	if err != nil || reg.BrokerEpoch != int64(reg.Index) || f.State().Brokers[7].Epoch != reg.BrokerEpoch {
		t.Fatalf("register via follower: %+v %v", reg, err)
	}
	pids, err := f.Apply(ctx, AllocateProducerIDs{Start: 0, Count: 10})
	if err != nil || pids.ProducerIDs != (ProducerIDBlock{Start: 0, Count: 10}) {
		t.Fatalf("producer ids via follower: %+v %v", pids, err)
	}

	// Typed errors survive forwarding, and the state that caused them is
	// visible on return.
	p := f.State().Topics["t"].Partitions[0]
	stale := PartitionChange{TopicID: idA, Partition: 0, Leader: p.Leader, ISR: p.ISR, LeaderEpoch: p.LeaderEpoch,
		ExpectedPartitionEpoch: p.PartitionEpoch + 5}
	for _, tc := range []struct {
		cmd  Command
		want error
	}{
		{CreateTopic{Topic: topic("t", idC, 1, 1)}, ErrTopicExists},
		{stale, ErrStalePartitionEpoch},
		{AllocateProducerIDs{Start: 0, Count: 1}, ErrStaleProducerIDBlock},
		{DeleteTopic{ID: idC}, ErrUnknownTopic},
		{FenceBroker{ID: 99}, ErrUnknownBroker},
	} {
		res, err := f.Apply(ctx, tc.cmd)
		if !errors.Is(err, tc.want) {
			t.Fatalf("%s via follower: %v, want %v", tc.cmd.Type(), err, tc.want)
		}
		if res.Index == 0 || f.State().Version < res.Index {
			t.Fatalf("%s via follower: index %d, state version %d", tc.cmd.Type(), res.Index, f.State().Version)
		}
	}
	// ApplyAll keeps per-command outcomes.
	_, errs := f.ApplyAll(ctx, []Command{CreateTopic{Topic: topic("u", idC, 1, 2)}, CreateTopic{Topic: topic("t", idC, 1, 1)}})
	if errs[0] != nil || !errors.Is(errs[1], ErrTopicExists) {
		t.Fatalf("ApplyAll via follower: %v", errs)
	}
	if f.State().Topics["u"] == nil {
		t.Fatal("ApplyAll returned before the follower applied it")
	}
	c.closeAll()
	waitGoroutines(t, base)
}

// TestStaticVotersApplyAcrossLeaderChange: applies from a follower while
// leadership moves repeatedly each succeed, or fail with a retryable or
// deadline error once their context ends; whatever succeeded is in the
// caller's state on return, and in everyone's.
func TestStaticVotersApplyAcrossLeaderChange(t *testing.T) {
	ctx := testCtx(t)
	c := newStaticCluster(t, 3, 0)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() { // moves leadership a few times while the applies run
		defer wg.Done()
		for range 3 {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if l := c.leader(); l != nil {
				_ = l.TransferLeadership()
			}
		}
	}()
	var done []string
	for i := range 40 {
		n := c.nodes[i%3]
		name := fmt.Sprintf("t%d", i)
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := n.Apply(actx, CreateTopic{Topic: topic(name, [16]byte{byte(i + 1), 1}, 1, 1)})
		cancel()
		switch {
		case err == nil:
			if n.State().Topics[name] == nil {
				t.Fatalf("node %d: %s applied but not in its state", n.ID(), name)
			}
			done = append(done, name)
		case errors.Is(err, context.DeadlineExceeded) && (errors.Is(err, ErrNotLeader) || errors.Is(err, ErrLeadershipLost) || errors.Is(err, errUnreachable)):
			t.Logf("node %d: %s gave up cleanly: %v", n.ID(), name, err)
		default:
			t.Fatalf("node %d: %s: %v", n.ID(), name, err)
		}
	}
	close(stop)
	wg.Wait()
	if len(done) == 0 {
		t.Fatal("no apply succeeded")
	}
	for _, n := range c.nodes {
		waitState(ctx, t, n, "every successful topic", func(s *State) bool {
			for _, name := range done {
				if s.Topics[name] == nil {
					return false
				}
			}
			return true
		})
	}
}

// heartbeater keeps one broker heartbeating through its node until stopped.
type heartbeater struct {
	stop chan struct{}
	done chan struct{}
}

func startHeartbeats(n *Node, hb BrokerHeartbeat, every time.Duration) *heartbeater {
	h := &heartbeater{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), every)
			_ = n.Heartbeat(ctx, hb)
			cancel()
			select {
			case <-h.stop:
				return
			case <-time.After(every):
			}
		}
	}()
	return h
}

func (h *heartbeater) Stop() {
	close(h.stop)
	<-h.done
}

// TestLivenessFenceAndUnfence: a broker whose node stops is fenced by the
// controller after the session timeout, its leaderships move to another
// ISR member with leader epoch + 1 and it leaves the ISRs; once it is back
// (new incarnation, registered fenced) and heartbeating it is unfenced.
// Then the same with the raft leader: the new controller starts its clock
// when it takes over.
func TestLivenessFenceAndUnfence(t *testing.T) {
	ctx := testCtx(t)
	const session = 600 * time.Millisecond
	c := newStaticCluster(t, 3, session)
	epochs := map[int32]int64{}
	hbs := map[int32]*heartbeater{}
	defer func() {
		for _, h := range hbs {
			h.Stop()
		}
	}()
	register := func(i int, inc [16]byte) {
		n := c.nodes[i]
		res, err := n.Apply(ctx, RegisterBroker{ID: n.ID(), Host: "h", Port: int32(9000 + i), IncarnationID: inc, Fenced: true})
		if err != nil {
			t.Fatalf("register broker %d: %v", n.ID(), err)
		}
		epochs[n.ID()] = res.BrokerEpoch
		hbs[n.ID()] = startHeartbeats(n, BrokerHeartbeat{ID: n.ID(), Epoch: res.BrokerEpoch}, session/6)
	}
	for i := range c.nodes {
		register(i, [16]byte{byte(i + 1)})
	}
	allUnfenced := func(s *State) bool {
		for _, n := range c.nodes {
			if n != nil && (s.Brokers[n.ID()].Fenced || s.Brokers[n.ID()].Epoch != epochs[n.ID()]) {
				return false
			}
		}
		return true
	}
	for _, n := range c.live() {
		waitState(ctx, t, n, "all brokers unfenced", allUnfenced)
	}
	ct, err := NewCreateTopic("t", 6, 3, nil, c.nodes[0].State().SortedBrokers())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.nodes[0].Apply(ctx, ct); err != nil {
		t.Fatal(err)
	}

	// stopAndCheck stops node i and waits until its broker is fenced with
	// its leaderships moved, as seen by the remaining nodes.
	stopAndCheck := func(i int) {
		id := int32(i + 1)
		before := c.live()[0].State().Topics["t"].Partitions
		hbs[id].Stop()
		delete(hbs, id)
		if err := c.nodes[i].Close(); err != nil {
			t.Fatal(err)
		}
		c.nodes[i] = nil
		for _, n := range c.live() {
			s := waitState(ctx, t, n, fmt.Sprintf("broker %d fenced and moved", id), func(s *State) bool {
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
			for j, p := range s.Topics["t"].Partitions {
				old := before[j]
				if old.Leader == id && (p.Leader == -1 || p.LeaderEpoch != old.LeaderEpoch+1) {
					t.Fatalf("partition %d led by %d: after fencing %+v", j, id, p)
				}
			}
		}
		if l := c.leader(); l != nil && l.ID() == id {
			t.Fatal("closed node leads")
		}
	}
	restart := func(i int, inc [16]byte) {
		n, err := c.open(i)
		if err != nil {
			t.Fatalf("reopen node %d: %v", i+1, err)
		}
		c.nodes[i] = n
		if err := n.WaitLeader(ctx); err != nil {
			t.Fatal(err)
		}
		register(i, inc)
		for _, n := range c.live() {
			waitState(ctx, t, n, fmt.Sprintf("broker %d back", i+1), allUnfenced)
		}
	}

	// A follower first.
	f := c.follower(ctx)
	fi := int(f.ID() - 1)
	stopAndCheck(fi)
	restart(fi, [16]byte{byte(fi + 1), 2})

	// Then the leader: a new controller takes over and fences it.
	l := c.leader()
	for l == nil {
		time.Sleep(10 * time.Millisecond)
		l = c.leader()
	}
	li := int(l.ID() - 1)
	stopAndCheck(li)
	restart(li, [16]byte{byte(li + 1), 2})
	for _, p := range c.nodes[0].State().Topics["t"].Partitions {
		if p.Leader == -1 {
			t.Fatalf("partition without leader with all brokers back: %+v", p)
		}
	}
}

// TestControlledShutdown: a broker's WantShutdown heartbeat returns once it
// is fenced and leads nothing; later normal heartbeats of the same epoch do
// not unfence it, a new incarnation is unfenced.
func TestControlledShutdown(t *testing.T) {
	ctx := testCtx(t)
	c := newStaticCluster(t, 3, 5*time.Second) // long: nothing expires during the test
	var eps []int64
	for _, n := range c.nodes {
		res, err := n.Apply(ctx, RegisterBroker{ID: n.ID(), Host: "h", Port: 1, IncarnationID: [16]byte{byte(n.ID())}})
		if err != nil {
			t.Fatal(err)
		}
		eps = append(eps, res.BrokerEpoch)
	}
	s0 := waitState(ctx, t, c.nodes[0], "three brokers", func(s *State) bool { return len(s.Brokers) == 3 })
	ct, err := NewCreateTopic("t", 6, 3, nil, s0.SortedBrokers())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.nodes[0].Apply(ctx, ct); err != nil {
		t.Fatal(err)
	}
	// Shut down the broker of a follower node, and the leader's own.
	var down []*Node
	for _, n := range []*Node{c.follower(ctx), c.leader()} {
		if n == nil {
			t.Fatal("no leader")
		}
		down = append(down, n)
		id := n.ID()
		if err := n.Heartbeat(ctx, BrokerHeartbeat{ID: id, Epoch: eps[id-1], WantShutdown: true}); err != nil {
			t.Fatalf("controlled shutdown of %d: %v", id, err)
		}
		// The controller committed the fence and the leadership moves (the
		// heartbeat answered only once both were in its state); the asking
		// node catches up with both. It applies FenceBroker before the moves
		// that follow it in the log, so it waits for both rather than the
		// fence alone.
		leads := func(s *State) bool {
			return slices.ContainsFunc(s.Topics["t"].Partitions, func(p Partition) bool { return p.Leader == id })
		}
		waitState(ctx, t, n, "own fencing and moved leaderships", func(s *State) bool { return s.Brokers[id].Fenced && !leads(s) })
		// A plain heartbeat of the same incarnation does not undo it.
		if err := n.Heartbeat(ctx, BrokerHeartbeat{ID: id, Epoch: eps[id-1]}); err != nil {
			t.Fatal(err)
		}
	}
	// A new incarnation of the first one is unfenced once it heartbeats.
	n := down[0]
	res, err := n.Apply(ctx, RegisterBroker{ID: n.ID(), Host: "h", Port: 1, IncarnationID: idC, Fenced: true})
	if err != nil {
		t.Fatal(err)
	}
	h := startHeartbeats(n, BrokerHeartbeat{ID: n.ID(), Epoch: res.BrokerEpoch}, 50*time.Millisecond)
	defer h.Stop()
	waitState(ctx, t, n, "new incarnation unfenced", func(s *State) bool {
		return !s.Brokers[n.ID()].Fenced && s.Brokers[n.ID()].Epoch == res.BrokerEpoch
	})
	// The leader's broker, shut down in its epoch, is still fenced: the
	// controller evaluated many times meanwhile (tick 500 ms at most, and
	// every heartbeat of a fenced broker wakes it).
	if s := n.State(); !s.Brokers[down[1].ID()].Fenced {
		t.Fatalf("broker %d unfenced after its controlled shutdown: %+v", down[1].ID(), s.Brokers)
	}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestStaticVotersIgnoredWithState: a data dir that already holds a
// cluster keeps its stored configuration whatever Voters say, with a
// warning; one voter naming the node itself is the sole-voter fast path.
func TestStaticVotersIgnoredWithState(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	addr := freeAddrs(t, 1)[0]
	self := []Voter{{ID: 1, Addr: addr}}
	n, err := Open(Config{NodeID: 1, DataDir: dir, BindAddr: addr, Voters: self, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if !n.soleVoter || !n.IsLeader() { // Open waited for leadership, as with Bootstrap
		t.Fatalf("one static voter: sole %v leader %v", n.soleVoter, n.IsLeader())
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	more := append(slices.Clone(self), Voter{ID: 2, Addr: "127.0.0.1:1"})
	n, err = Open(Config{NodeID: 1, DataDir: dir, BindAddr: addr, Voters: more,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	if srv, err := n.Servers(); err != nil || len(srv) != 1 {
		t.Fatalf("servers %v %v", srv, err)
	}
	if !strings.Contains(logs.String(), "voters differ from the configured ones") {
		t.Fatalf("no warning in %q", logs.String())
	}
}

// TestVotersRelaxStartTimeouts: a voter of a multi-voter cluster starts
// with the leader lease as its heartbeat and election timeouts, so a
// cluster starting at once elects its first leader sooner, and takes the
// configured ones as soon as it knows a leader.
func TestVotersRelaxStartTimeouts(t *testing.T) {
	addrs := freeAddrs(t, 3)
	c := &staticCluster{t: t, session: time.Second, nodes: make([]*Node, 3), tls: make([]*tls.Config, 3)}
	for i, a := range addrs {
		c.voters = append(c.voters, Voter{ID: int32(i + 1), Addr: a})
		c.dirs = append(c.dirs, t.TempDir())
	}
	t.Cleanup(c.closeAll)
	const configured, lease = 200 * time.Millisecond, 100 * time.Millisecond // staticCluster.open's
	n1, err := c.open(0)
	if err != nil {
		t.Fatal(err)
	}
	c.nodes[0] = n1
	// Alone, node 1 cannot win an election: no leader yet.
	if rc := n1.r.ReloadableConfig(); rc.HeartbeatTimeout != lease || rc.ElectionTimeout != lease {
		t.Fatalf("node 1 before any leader: heartbeat %v election %v, want %v both", rc.HeartbeatTimeout, rc.ElectionTimeout, lease)
	}
	for i := 1; i < 3; i++ {
		if c.nodes[i], err = c.open(i); err != nil {
			t.Fatal(err)
		}
	}
	ctx := testCtx(t)
	for _, n := range c.nodes {
		if err := n.WaitLeader(ctx); err != nil {
			t.Fatalf("node %d: %v", n.ID(), err)
		}
		for {
			rc := n.r.ReloadableConfig()
			if rc.HeartbeatTimeout == configured && rc.ElectionTimeout == configured {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("node %d with a leader: heartbeat %v election %v, want %v both", n.ID(), rc.HeartbeatTimeout, rc.ElectionTimeout, configured)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

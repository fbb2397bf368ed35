package raft

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Broker liveness, decided by the controller (the raft leader).
//
// Every broker calls Node.Heartbeat periodically with its id and broker
// epoch (from RegisterBroker); a follower forwards it to the leader. The
// leader's controller remembers when it last heard from each broker and,
// on a tick, proposes:
//   - FenceCommands for an unfenced broker silent for BrokerSessionTimeout
//     or that asked for a controlled shutdown (WantShutdown) in its current
//     epoch: its leaderships move to other ISR members, it leaves the ISRs;
//   - FenceCommands again for a fenced broker that still leads or sits in an
//     ISR it can leave (a stale partition epoch, or a broker that
//     re-registered fenced while it still held leaderships);
//   - UnfenceCommands for a fenced broker heartbeating its current epoch
//     whose state has applied its own registration (caught up), unless it
//     asked to shut down in that epoch.
// Each tick it also finishes partition reassignments whose target replicas
// have all joined the ISR (CompleteReassignmentCommands), and every
// LeaderImbalanceCheckInterval it moves leaderships back to preferred
// replicas (RebalanceCommands), so a restarted broker gets its leaderships
// back. The controller, not the partition leader, finishes reassignments:
// it sees every partition's ISR in the raft state, and the leader being
// removed needs no part in handing leadership over.
// The leader's own node id counts as alive (its process runs the
// controller). A node that becomes leader has no history: it starts every
// broker's clock at that moment, after a barrier so its state is complete.

// BrokerHeartbeat is a broker's periodic liveness report.
type BrokerHeartbeat struct {
	// ID and Epoch name the broker incarnation (Result.BrokerEpoch of its
	// RegisterBroker).
	ID    int32
	Epoch int64
	// WantShutdown asks the controller to fence the broker now and move its
	// leaderships away (controlled shutdown); Heartbeat then returns once
	// that is committed. It sticks for the epoch.
	WantShutdown bool
}

// brokerSeen is what the controller last heard from a broker.
type brokerSeen struct {
	at       time.Time
	epoch    int64
	applied  uint64 // the broker node's State().Version when it sent it
	shutdown bool   // WantShutdown was sent in epoch
	heard    bool   // false: clock started by a leadership change only
}

// controller is the liveness half of the controller; it runs on every node
// and acts only while the node leads.
type controller struct {
	n       *Node
	session time.Duration
	tick    time.Duration

	// mu guards seen.
	mu   sync.Mutex
	seen map[int32]brokerSeen

	// opMu serializes decisions (the run loop's evaluate and controlled
	// shutdowns) and guards leading.
	opMu    sync.Mutex
	leading bool
	// lastBalance is when leader balancing last ran (or leadership began);
	// opMu held.
	lastBalance time.Time

	// wake asks run for an early evaluation (capacity 1).
	wake chan struct{}
}

func newController(n *Node, session time.Duration) *controller {
	return &controller{n: n, session: session, tick: min(max(session/10, 10*time.Millisecond), 500*time.Millisecond),
		seen: map[int32]brokerSeen{}, wake: make(chan struct{}, 1)}
}

// run evaluates liveness every tick while the node leads. Owned by the
// Node (wg); ends when stop is closed.
func (c *controller) run() {
	defer c.n.wg.Done()
	t := time.NewTicker(c.tick)
	defer t.Stop()
	for {
		select {
		case <-c.n.stop:
			return
		case <-t.C:
		case <-c.wake:
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.n.cfg.ApplyTimeout)
		c.opMu.Lock()
		c.step(ctx)
		c.opMu.Unlock()
		cancel()
	}
}

// step is one evaluation; opMu held.
func (c *controller) step(ctx context.Context) {
	if !c.n.IsLeader() {
		c.leading = false
		return
	}
	if !c.leading {
		if err := c.n.Barrier(ctx); err != nil {
			return
		}
		now := time.Now()
		c.mu.Lock()
		c.seen = map[int32]brokerSeen{}
		for id, b := range c.n.State().Brokers {
			c.seen[id] = brokerSeen{at: now, epoch: b.Epoch}
		}
		c.mu.Unlock()
		c.leading = true
		c.lastBalance = now
	}
	c.evaluate(ctx)
	c.maintainPartitions(ctx)
}

// maintainPartitions finishes reassignments and, when due, balances
// leaders. opMu held; this node leads.
func (c *controller) maintainPartitions(ctx context.Context) {
	if done := CompleteReassignmentCommands(c.n.State()); len(done) > 0 {
		c.n.cfg.Logger.Info("controller: completing reassignments", "partitions", len(done))
		c.proposeAll(ctx, "complete reassignment", done)
	}
	every := c.n.cfg.LeaderImbalanceCheckInterval
	if every < 0 || time.Since(c.lastBalance) < every {
		return
	}
	c.lastBalance = time.Now()
	if cmds := RebalanceCommands(c.n.State(), c.n.cfg.LeaderImbalancePerBrokerPercentage); len(cmds) > 0 {
		c.n.cfg.Logger.Info("controller: moving leaderships to preferred replicas", "partitions", len(cmds))
		c.proposeAll(ctx, "balance leaders", cmds)
	}
}

// proposeAll applies cmds on this (leading) node; failures (stale epochs
// after a concurrent change, lost leadership) are left to the next tick,
// which recomputes from the newer state.
func (c *controller) proposeAll(ctx context.Context, what string, cmds []Command) {
	_, errs := c.n.applyAllLocal(ctx, cmds)
	for i, err := range errs {
		if err != nil {
			c.n.cfg.Logger.Debug("controller: "+what, "command", cmds[i].Type().String(), "err", err)
		}
	}
}

// evaluate proposes fence and unfence commands as the package comment
// describes. opMu held; this node leads (or the proposals fail harmlessly
// with ErrNotLeader).
func (c *controller) evaluate(ctx context.Context) {
	s := c.n.State()
	ids := make([]int32, 0, len(s.Brokers))
	for id := range s.Brokers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	now := time.Now()
	log := c.n.cfg.Logger
	for _, id := range ids {
		b, ok := s.Brokers[id]
		if !ok {
			continue
		}
		c.mu.Lock()
		seen, known := c.seen[id]
		if !known { // registered after this node took over: clock starts now
			seen = brokerSeen{at: now, epoch: b.Epoch}
			c.seen[id] = seen
		}
		c.mu.Unlock()
		expired := id != c.n.cfg.NodeID && now.Sub(seen.at) >= c.session
		shutdown := seen.shutdown && seen.epoch == b.Epoch
		var fence []Command // computed only for brokers that may need it: O(partitions)
		if b.Fenced || expired || shutdown {
			fence = FenceCommands(s, id)
		}
		if (!b.Fenced && (expired || shutdown)) || (b.Fenced && len(fence) > 1) {
			if !b.Fenced {
				reason := "session expired"
				if shutdown {
					reason = "controlled shutdown"
				}
				log.Info("controller: fencing broker", "broker", id, "epoch", b.Epoch, "reason", reason,
					"silent", now.Sub(seen.at).Round(time.Millisecond), "partitions", len(fence)-1)
			}
			c.propose(ctx, "fence", id, fence)
			s = c.n.State()
			if b, ok = s.Brokers[id]; !ok {
				continue
			}
		}
		if b.Fenced && !expired && !shutdown && seen.heard && seen.epoch == b.Epoch && seen.applied >= uint64(b.Epoch) {
			unfence := UnfenceCommands(s, id)
			log.Info("controller: unfencing broker", "broker", id, "epoch", b.Epoch, "leaderships", len(unfence)-1)
			c.propose(ctx, "unfence", id, unfence)
			s = c.n.State()
		}
	}
}

// propose applies cmds on this (leading) node; failures are logged and
// left to the next evaluation, which recomputes from the newer state.
func (c *controller) propose(ctx context.Context, what string, id int32, cmds []Command) {
	_, errs := c.n.applyAllLocal(ctx, cmds)
	for i, err := range errs {
		if err == nil {
			continue
		}
		level := c.n.cfg.Logger.Warn
		if errors.Is(err, ErrStalePartitionEpoch) || errors.Is(err, ErrStaleBrokerEpoch) ||
			errors.Is(err, ErrNotLeader) || errors.Is(err, ErrLeadershipLost) {
			level = c.n.cfg.Logger.Debug
		}
		level("controller: "+what+" broker", "broker", id, "command", cmds[i].Type().String(), "err", err)
	}
}

// heartbeat records hb on the leader. With WantShutdown it evaluates at once
// and returns nil only when the broker is fenced and holds no leadership
// or ISR place it could give up.
func (c *controller) heartbeat(ctx context.Context, hb BrokerHeartbeat, applied uint64) error {
	c.mu.Lock()
	prev := c.seen[hb.ID]
	shutdown := hb.WantShutdown || (prev.shutdown && prev.epoch == hb.Epoch)
	c.seen[hb.ID] = brokerSeen{at: time.Now(), epoch: hb.Epoch, applied: applied, shutdown: shutdown, heard: true}
	c.mu.Unlock()
	if !hb.WantShutdown {
		if b, ok := c.n.State().Brokers[hb.ID]; ok && b.Fenced && b.Epoch == hb.Epoch {
			select {
			case c.wake <- struct{}{}:
			default:
			}
		}
		return nil
	}
	c.opMu.Lock()
	defer c.opMu.Unlock()
	c.step(ctx)
	if !c.leading {
		return fmt.Errorf("controlled shutdown of broker %d: %w", hb.ID, ErrNotLeader)
	}
	s := c.n.State()
	b, ok := s.Brokers[hb.ID]
	switch {
	case !ok:
		return fmt.Errorf("controlled shutdown of broker %d: %w", hb.ID, ErrUnknownBroker)
	case b.Epoch != hb.Epoch:
		return fmt.Errorf("controlled shutdown of broker %d epoch %d (now %d): %w", hb.ID, hb.Epoch, b.Epoch, ErrStaleBrokerEpoch)
	case !b.Fenced || len(FenceCommands(s, hb.ID)) > 1:
		return fmt.Errorf("controlled shutdown of broker %d: leaderships not moved yet: %w", hb.ID, ErrFenced)
	}
	return nil
}

// Heartbeat reports broker hb.ID alive to the controller (the raft leader),
// forwarding it when this node does not lead, with this node's applied
// index as the broker's progress. It retries across leader changes like
// ApplyAll until ctx ends (ApplyTimeout when it has no deadline). On a node
// without liveness tracking (BrokerSessionTimeout zero) the leader accepts
// and ignores it. With WantShutdown it returns nil once the broker is
// fenced and its leaderships have moved; ErrFenced (retried until ctx
// ends) while they have not.
func (n *Node) Heartbeat(ctx context.Context, hb BrokerHeartbeat) error {
	return n.onLeader(ctx, "heartbeat",
		func(ctx context.Context) error { return n.heartbeatLocal(ctx, hb, n.State().Version) },
		func(ctx context.Context, addr string) error {
			return forwardHeartbeat(ctx, n.stream.dialContext, addr, hb, n.State().Version)
		},
		func(err error) bool { return errors.Is(err, ErrFenced) })
}

// onLeader runs local when this node leads and remote against the leader's
// raft address otherwise, retrying with backoff while the outcome is
// retryable (the leader moved or was unreachable) or again says so, until
// ctx ends (ApplyTimeout when it has no deadline) or the node closes. what
// names the operation in errors.
func (n *Node) onLeader(ctx context.Context, what string, local func(context.Context) error,
	remote func(ctx context.Context, addr string) error, again func(error) bool) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.cfg.ApplyTimeout)
		defer cancel()
	}
	backoff := 5 * time.Millisecond
	for {
		var err error
		switch {
		case n.closed.Load():
			return fmt.Errorf("%s: %w", what, ErrClosed)
		case n.IsLeader():
			err = local(ctx)
		default:
			if addr, _ := n.r.LeaderWithID(); addr != "" {
				err = remote(ctx, string(addr))
			} else {
				err = fmt.Errorf("%s: %w: no leader known", what, ErrNotLeader)
			}
		}
		if err == nil || !(retryable(err) || again != nil && again(err)) {
			return err
		}
		select {
		case <-time.After(backoff):
		case <-n.stop:
			return fmt.Errorf("%s: %w", what, ErrClosed)
		case <-ctx.Done():
			return errors.Join(err, fmt.Errorf("%s: gave up: %w", what, ctx.Err()))
		}
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}

// heartbeatLocal handles a heartbeat on the node that should be the leader.
func (n *Node) heartbeatLocal(ctx context.Context, hb BrokerHeartbeat, applied uint64) error {
	if !n.IsLeader() {
		return fmt.Errorf("heartbeat: %w", ErrNotLeader)
	}
	if n.ctrl == nil {
		return nil
	}
	return n.ctrl.heartbeat(ctx, hb, applied)
}

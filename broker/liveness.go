package broker

// Broker liveness in a multi-node cluster. The controller (the raft leader,
// raft/liveness.go) fences a broker it has not heard from for
// BrokerSessionTimeout and unfences it once it heartbeats again, caught up.
// This side of it:
//   - a broker of a multi-voter cluster registers fenced and Start waits
//     until the controller unfenced it (a one-node cluster registers
//     unfenced, as before);
//   - heartbeatLoop reports the broker alive every heartbeatInterval;
//   - mayLead refuses partition leadership while the broker is fenced, or,
//     with several voters, when no heartbeat reached the controller for a
//     session timeout (the controller has fenced it or is about to, and a
//     new leader may already be serving);
//   - controlledShutdown (from Close) asks the controller to move this
//     broker's leaderships away before it stops, so clients fail over at
//     once instead of after the session timeout.

import (
	"context"
	"fmt"
	"time"

	"github.com/stromhq/strom/raft"
)

// multiNode reports whether this broker shares its cluster with others:
// several voters, or this node is a broker-only member. (A single voter
// that broker-only nodes joined still acts as a one-node cluster for
// itself: it is the controller, so it needs no heartbeat to stay unfenced.)
func (b *Broker) multiNode() bool { return len(b.cfg.Voters) > 1 || b.cfg.BrokerOnly }

// heartbeatRetry is how soon heartbeatLoop retries a heartbeat that failed.
const heartbeatRetry = 100 * time.Millisecond

// heartbeatInterval is how often heartbeatLoop reports.
func (b *Broker) heartbeatInterval() time.Duration {
	return max(min(2*time.Second, b.cfg.BrokerSessionTimeout/3), 10*time.Millisecond)
}

// heartbeatLoop heartbeats broker epoch until the broker's context ends.
// Owned by bgWG.
func (b *Broker) heartbeatLoop(epoch int64) {
	defer b.bgWG.Done()
	every := b.heartbeatInterval()
	hb := raft.BrokerHeartbeat{ID: b.cfg.NodeID, Epoch: epoch}
	failing := false
	changed, unsubscribe := b.node.Subscribe()
	defer unsubscribe()
	for {
		ctx, cancel := context.WithTimeout(b.ctx, every)
		sent := time.Now()
		err := b.node.Heartbeat(ctx, hb)
		cancel()
		switch {
		case err == nil:
			b.lastHeartbeat.Store(sent.UnixNano())
			if failing {
				b.log.Info("heartbeats reach the controller again")
				failing = false
			}
		case b.ctx.Err() != nil:
			return
		case !failing:
			b.log.Warn("heartbeat to the controller failed", "err", err)
			failing = true
		}
		wait := every - time.Since(sent)
		var sooner <-chan struct{}
		if br, ok := b.node.State().Brokers[b.cfg.NodeID]; err != nil || !ok || br.Fenced {
			// A failed heartbeat (no leader yet, a leader change) is retried
			// soon, and so is one that has not unfenced us yet (a controller
			// elected a moment later starts from nothing): a starting broker
			// waits for it. The controller unfences a broker whose heartbeat
			// shows it has applied the log far enough, so a change of the
			// local state (the registration applied here, a leader known)
			// is worth a heartbeat at once, heartbeatSpacing apart at most.
			wait = min(wait, heartbeatRetry)
			sooner = changed
		}
		select {
		case <-b.ctx.Done():
			return
		case <-time.After(wait):
		case <-sooner:
			select {
			case <-b.ctx.Done():
				return
			case <-time.After(heartbeatSpacing - time.Since(sent)):
			}
		}
	}
}

// heartbeatSpacing is the least time between two heartbeats that
// heartbeatLoop sends early because the state changed.
const heartbeatSpacing = 10 * time.Millisecond

// mayLead reports whether this broker may act as a partition leader now;
// st is the state the caller looked the partition up in.
func (b *Broker) mayLead(st *raft.State) bool {
	if br, ok := st.Brokers[b.cfg.NodeID]; !ok || br.Fenced {
		return false
	}
	if !b.multiNode() {
		return true
	}
	last := b.lastHeartbeat.Load()
	return last != 0 && time.Since(time.Unix(0, last)) < b.cfg.BrokerSessionTimeout
}

// waitUnfenced blocks until the raft state shows this broker's epoch
// unfenced.
func (b *Broker) waitUnfenced(ctx context.Context, epoch int64) error {
	ch, cancel := b.node.Subscribe()
	defer cancel()
	for {
		if br, ok := b.node.State().Brokers[b.cfg.NodeID]; ok && br.Epoch == epoch && !br.Fenced {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for the controller to unfence broker %d (epoch %d): %w", b.cfg.NodeID, epoch, ctx.Err())
		}
	}
}

// controlledShutdown asks the controller to fence this broker and move its
// leaderships away, then hands raft leadership to another voter if this
// node has it. Best effort, bounded by the session timeout (after which
// the controller fences the broker anyway); only multi-node clusters. The
// request is retried in short attempts, and it is done as soon as this
// node's own state shows it fenced with nothing left to move (the answer
// may have been lost with a controller that stopped too).
func (b *Broker) controlledShutdown() {
	if !b.multiNode() || b.node == nil || b.brokerEpoch == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), min(b.cfg.BrokerSessionTimeout, b.cfg.ShutdownTimeout))
	defer cancel()
	began := time.Now()
	hb := raft.BrokerHeartbeat{ID: b.cfg.NodeID, Epoch: b.brokerEpoch, WantShutdown: true}
	done := func() bool {
		s := b.node.State()
		br, ok := s.Brokers[b.cfg.NodeID]
		return ok && br.Epoch == b.brokerEpoch && br.Fenced && len(raft.FenceCommands(s, b.cfg.NodeID)) <= 1
	}
	var err error
	for ctx.Err() == nil {
		actx, acancel := context.WithTimeout(ctx, time.Second)
		err = b.node.Heartbeat(actx, hb)
		acancel()
		if err == nil || done() {
			err = nil
			break
		}
	}
	if err != nil {
		b.log.Warn("controlled shutdown: leaderships not moved", "err", err)
		return
	}
	b.log.Info("controlled shutdown: leaderships moved", "took", time.Since(began).Round(time.Millisecond))
	if b.node.IsLeader() {
		if err := b.node.TransferLeadership(); err != nil {
			b.log.Warn("controlled shutdown: raft leadership not transferred", "err", err)
		}
	}
}

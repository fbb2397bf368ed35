package broker

// The leader's side of partition replication: which replicas are in sync,
// where each follower's log ends, and the high watermark that follows from
// them. The follower's side (fetching from the leader) is replica_fetcher.go.
//
// A partition's replica state mirrors the raft record of the partition
// (leader, leader epoch, ISR, partition epoch), refreshed by the partition
// manager on every metadata change, plus what only the leader knows: each
// follower's log end offset, learned from the fetch offsets of its Fetch
// requests (KIP-392's replica id or KIP-903's replica state), and when it
// was last caught up.
//
// The high watermark of a leader is the smallest of its own durable end
// offset (what fsync covered, under fsync=always) and the log end offsets of
// every ISR member, counting members whose addition is proposed but not yet
// committed (Kafka's "maximal ISR"), so a replica never joins the ISR while
// the high watermark is past its log end. A follower's fetch offset is
// durable on the follower too: the fetcher syncs an append before it fetches
// again. So an acks=all answer, sent once the high watermark passes the
// batch, means every ISR member has the batch on disk.
//
// ISR changes are proposed by the leader to the raft controller as
// compare-and-set commands on the partition epoch; one change per partition
// is in flight at a time, and a change that lost a race is recomputed on the
// next fetch or lag check.

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/stromhq/strom/raft"
	"github.com/stromhq/strom/storage"
)

// followerState is what the leader knows of one follower.
type followerState struct {
	// leo is the follower's log end offset (its last fetch offset), -1
	// before its first fetch in this leader epoch.
	leo int64
	// logStart is the follower's log start offset from its last fetch
	// (-1 before one); a consumer is only sent to a replica holding its
	// fetch offset (follower_read.go).
	logStart int64
	// lastFetch is when its last fetch arrived, and leaderLEOAtLastFetch
	// the leader's log end offset then.
	lastFetch            time.Time
	leaderLEOAtLastFetch int64
	// caughtUp is the last time the follower had everything the leader had
	// (Kafka's lastCaughtUpTimeMs); the lag check compares it with
	// replica.lag.time.max.ms.
	caughtUp time.Time
}

// replState is a partition's replication state. mu guards every field.
type replState struct {
	mu sync.Mutex
	// self is this broker's id.
	self int32
	// leader reports whether this broker leads the partition in epoch.
	leader bool
	epoch  int32
	// replicas, isr and partitionEpoch are raft's record of the
	// partition.
	replicas, isr  []int32
	partitionEpoch int32
	topicID        [16]byte
	// epochStart is the leader's log end offset when it took this epoch: a
	// follower joins the ISR only once it has fetched past it.
	epochStart int64
	// followers holds the followers' states while leading; reset on every
	// new epoch.
	followers map[int32]*followerState
	// expanding lists replicas whose ISR addition is proposed; they count
	// for the high watermark from the proposal on.
	expanding []int32
	// proposing is set while an ISR change is in flight.
	proposing bool
}

// replicated reports whether the partition has more than one replica.
func (p *partition) replicated() bool {
	p.repl.mu.Lock()
	defer p.repl.mu.Unlock()
	return len(p.repl.replicas) > 1
}

// isLeader reports whether this broker leads the partition in epoch.
func (p *partition) isLeader(epoch int32) bool {
	p.repl.mu.Lock()
	defer p.repl.mu.Unlock()
	return p.repl.leader && p.repl.epoch == epoch
}

// stopLeading drops the leader role of a replica this broker no longer
// hosts (topic deleted, replica moved away by a reassignment), so acks=all
// produces parked in waitHW answer at once (errUnconfirmedAppend) instead
// of at their timeout. Caller is the partition manager, which wakes the
// waiters afterwards.
func (p *partition) stopLeading() {
	p.repl.mu.Lock()
	p.repl.leader = false
	p.repl.mu.Unlock()
}

// setRaftState records raft's view of the partition. It returns whether this
// broker became leader or stopped leading (a new epoch, or a role change).
// Caller is the partition manager's reconcile.
func (p *partition) setRaftState(self int32, topicID [16]byte, rp *raft.Partition, leo int64) (changed bool) {
	r := &p.repl
	r.mu.Lock()
	defer r.mu.Unlock()
	lead := rp.Leader == self
	changed = lead != r.leader || rp.LeaderEpoch != r.epoch
	r.self, r.topicID = self, topicID
	r.replicas, r.isr, r.partitionEpoch = rp.Replicas, rp.ISR, rp.PartitionEpoch
	r.expanding = slices.DeleteFunc(r.expanding, func(id int32) bool { return slices.Contains(rp.ISR, id) })
	if changed {
		r.leader, r.epoch = lead, rp.LeaderEpoch
		r.followers = map[int32]*followerState{}
		r.expanding = nil
		r.epochStart = leo
	}
	if lead {
		// Kafka starts an ISR member's catch-up clock when the leader
		// takes over (or the member joins): a follower gets a full lag
		// period to fetch from its new leader before it is dropped.
		now := time.Now()
		for _, id := range rp.ISR {
			if id != self && r.followers[id] == nil {
				r.followers[id] = &followerState{leo: -1, logStart: -1, caughtUp: now, leaderLEOAtLastFetch: -1}
			}
		}
	}
	return changed
}

// isrSize returns the size of the partition's ISR as last reconciled.
func (p *partition) isrSize() int {
	p.repl.mu.Lock()
	defer p.repl.mu.Unlock()
	return len(p.repl.isr)
}

// markDurable records that the local log is durable below end, and moves the
// high watermark when this broker leads.
func (p *partition) markDurable(end int64) {
	for {
		cur := p.durable.Load()
		if end <= cur || p.durable.CompareAndSwap(cur, end) {
			break
		}
	}
	p.maybeAdvanceHW()
}

// resetDurable lowers the durable end after a truncation.
func (p *partition) resetDurable(end int64) {
	for {
		cur := p.durable.Load()
		if end >= cur || p.durable.CompareAndSwap(cur, end) {
			return
		}
	}
}

// leaderHWLocked computes the high watermark a leader may publish; ok is false
// when this broker does not lead or an ISR member has not fetched yet in
// this epoch. Caller holds p.repl.mu.
func (p *partition) leaderHWLocked() (hw int64, ok bool) {
	r := &p.repl
	if !r.leader {
		return 0, false
	}
	hw = min(p.durable.Load(), p.log.EndOffset())
	count := func(id int32) bool {
		if id == r.self {
			return true
		}
		f := r.followers[id]
		if f == nil || f.leo < 0 {
			return false
		}
		hw = min(hw, f.leo)
		return true
	}
	for _, id := range r.isr {
		if !count(id) {
			return 0, false
		}
	}
	for _, id := range r.expanding {
		if !count(id) {
			return 0, false
		}
	}
	return hw, true
}

// maybeAdvanceHW moves a leader's high watermark to what its ISR and its own
// durable log allow.
func (p *partition) maybeAdvanceHW() {
	p.repl.mu.Lock()
	hw, ok := p.leaderHWLocked()
	p.repl.mu.Unlock()
	if ok {
		p.advanceHW(hw)
	}
}

// followerFetched records a follower's fetch at offset (its log starting at
// logStart, -1 if not given) and reports whether
// the fetch is acceptable: the fetcher must be a replica of the partition
// and this broker its leader. It may advance the high watermark and propose
// adding the follower back to the ISR.
func (p *partition) followerFetched(b *Broker, id int32, offset, logStart int64) *kerr.Error {
	now := time.Now()
	leo := p.log.EndOffset()
	r := &p.repl
	r.mu.Lock()
	if !r.leader {
		r.mu.Unlock()
		return kerr.NotLeaderForPartition
	}
	if id == r.self || !slices.Contains(r.replicas, id) {
		r.mu.Unlock()
		return kerr.NotLeaderForPartition
	}
	f := r.followers[id]
	if f == nil {
		f = &followerState{leo: -1, logStart: -1, leaderLEOAtLastFetch: -1}
		r.followers[id] = f
	}
	// Kafka's rule: caught up now if the fetch reaches the leader's end; or
	// caught up as of the previous fetch if it reaches what the leader had
	// then.
	switch {
	case offset >= leo:
		f.caughtUp = now
	case f.leaderLEOAtLastFetch >= 0 && offset >= f.leaderLEOAtLastFetch:
		f.caughtUp = f.lastFetch
	}
	f.leo, f.lastFetch, f.leaderLEOAtLastFetch = offset, now, leo
	startMoved := f.logStart != logStart
	f.logStart = logStart
	var expand []int32
	hwNow := p.log.HighWatermark()
	if !slices.Contains(r.isr, id) && !slices.Contains(r.expanding, id) && !r.proposing &&
		offset >= hwNow && offset >= r.epochStart && !brokerFenced(b, id) {
		expand = append(slices.Clone(r.isr), id)
		r.expanding = append(r.expanding, id)
		r.proposing = true
	}
	hw, ok := p.leaderHWLocked()
	cmd := p.isrChangeLocked(expand)
	r.mu.Unlock()
	if ok {
		p.advanceHW(hw)
	}
	if startMoved {
		p.wake() // a DeleteRecords may wait for the low watermark
	}
	if expand != nil {
		b.proposeISR(p, cmd, id)
	}
	return nil
}

// lowWatermark is Kafka's low watermark of a partition this broker leads:
// the lowest log start offset among the leader and its followers on live
// brokers, a follower that has not fetched in this epoch counting as -1.
// ok is false when this broker does not lead the partition.
func (p *partition) lowWatermark(b *Broker) (low int64, ok bool) {
	low = p.log.LogStartOffset()
	r := &p.repl
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.leader {
		return -1, false
	}
	for _, id := range r.replicas {
		if id == r.self || brokerFenced(b, id) {
			continue
		}
		start := int64(-1)
		if f := r.followers[id]; f != nil {
			start = f.logStart
		}
		low = min(low, start)
	}
	return low, true
}

// lowWatermarkPoll bounds how long waitLowWatermark goes without looking:
// a follower's broker being fenced, which takes it out of the low
// watermark, wakes no waiter.
const lowWatermarkPoll = 100 * time.Millisecond

// waitLowWatermark blocks until the low watermark reaches want (DeleteRecords
// on a replicated partition) and returns it; on a lost leadership it gives
// NOT_LEADER_OR_FOLLOWER, at ctx's end REQUEST_TIMED_OUT with the low
// watermark reached so far.
func (p *partition) waitLowWatermark(ctx context.Context, b *Broker, want int64) (int64, *kerr.Error) {
	ch := make(chan struct{}, 1)
	p.addWaiter(ch)
	defer p.removeWaiter(ch)
	t := time.NewTicker(lowWatermarkPoll)
	defer t.Stop()
	for {
		low, ok := p.lowWatermark(b)
		switch {
		case !ok:
			return -1, kerr.NotLeaderForPartition
		case low >= want:
			return low, nil
		}
		select {
		case <-ch:
		case <-t.C:
		case <-p.stopping:
			return -1, kerr.NotLeaderForPartition
		case <-ctx.Done():
			return low, kerr.RequestTimedOut
		}
	}
}

// isrChangeLocked builds the PartitionChange setting the ISR to isr (nil
// when isr is nil). Caller holds p.repl.mu.
func (p *partition) isrChangeLocked(isr []int32) raft.PartitionChange {
	r := &p.repl
	if isr == nil {
		return raft.PartitionChange{}
	}
	// List the members in replica order, whatever order they came in.
	ordered := make([]int32, 0, len(isr))
	for _, id := range r.replicas {
		if slices.Contains(isr, id) {
			ordered = append(ordered, id)
		}
	}
	return raft.PartitionChange{TopicID: r.topicID, Partition: p.index, Leader: r.self, ISR: ordered,
		LeaderEpoch: r.epoch, ExpectedPartitionEpoch: r.partitionEpoch}
}

// laggingLocked returns the ISR members that have not caught up within
// maxLag, when this broker leads. Caller holds p.repl.mu.
func (p *partition) laggingLocked(now time.Time, maxLag time.Duration) []int32 {
	r := &p.repl
	if !r.leader {
		return nil
	}
	var out []int32
	for _, id := range r.isr {
		if id == r.self {
			continue
		}
		f := r.followers[id]
		if f == nil || now.Sub(f.caughtUp) > maxLag {
			out = append(out, id)
		}
	}
	return out
}

// shrinkLaggingISR drops followers that fell more than maxLag behind from
// the ISR of every partition this broker leads (Kafka's
// replica.lag.time.max.ms check); the high watermark can then move on
// without them.
func (b *Broker) shrinkLaggingISR(now time.Time, maxLag time.Duration) {
	for _, p := range b.parts.all() {
		r := &p.repl
		r.mu.Lock()
		lag := p.laggingLocked(now, maxLag)
		if len(lag) == 0 || r.proposing {
			r.mu.Unlock()
			continue
		}
		isr := slices.DeleteFunc(slices.Clone(r.isr), func(id int32) bool { return slices.Contains(lag, id) })
		r.proposing = true
		cmd := p.isrChangeLocked(isr)
		r.mu.Unlock()
		b.log.Info("shrinking ISR", "topic", p.topic, "partition", p.index, "lagging", lag, "isr", cmd.ISR)
		b.proposeISR(p, cmd, -1)
	}
}

// proposeISR applies an ISR change in the background; added is the replica
// being added (-1 for a shrink), whose pending mark is cleared if the change
// fails. The partition manager applies the committed change to p.
func (b *Broker) proposeISR(p *partition, cmd raft.PartitionChange, added int32) {
	if b.ctx.Err() != nil { // closing: no new background work
		p.repl.mu.Lock()
		p.repl.proposing = false
		p.repl.mu.Unlock()
		return
	}
	b.bgWG.Add(1)
	go func() {
		defer b.bgWG.Done()
		ctx, cancel := context.WithTimeout(b.ctx, metaTimeout)
		_, err := b.node.Apply(ctx, cmd)
		cancel()
		if err == nil {
			b.parts.reconcile()
		} else if b.ctx.Err() == nil {
			b.log.Debug("ISR change not applied", "topic", p.topic, "partition", p.index, "isr", cmd.ISR, "err", err)
		}
		r := &p.repl
		r.mu.Lock()
		r.proposing = false
		if err != nil && added >= 0 {
			r.expanding = slices.DeleteFunc(r.expanding, func(id int32) bool { return id == added })
		}
		r.mu.Unlock()
		p.maybeAdvanceHW()
	}()
}

// errUnconfirmedAppend answers a write this leader appended but whose
// replication it can no longer confirm: its leadership in the write's epoch
// ended (another replica was elected, or this broker is shutting down)
// before the high watermark passed the write. The write may survive on the
// new leader or may be truncated; nobody can tell yet. Kafka answers
// NOT_LEADER_OR_FOLLOWER here, which clients read as "not written": franz-go
// may then fail the batch on a later metadata error and reuse its sequence
// number under the same epoch for its next transaction, and the new leader,
// which holds the first batch, acknowledges the second as a duplicate
// without appending it, so an acknowledged record is lost (seen in
// TestTxnClusterAtomicUnderLeaderStop). NOT_ENOUGH_REPLICAS_AFTER_APPEND says
// what happened (written to this log, not confirmed on enough replicas), is
// retriable for every client, and makes them treat the batch as possibly
// written: they retry it with the same sequence, which the new leader
// deduplicates or appends.
var errUnconfirmedAppend = kerr.NotEnoughReplicasAfterAppend

// waitHW blocks until the high watermark passes last, for an acks=all
// produce (or a coordinator's write) appended in leader epoch epoch. Like
// Kafka, it then checks that the ISR still satisfies min.insync.replicas
// (NOT_ENOUGH_REPLICAS_AFTER_APPEND otherwise); a leadership lost first gives
// errUnconfirmedAppend and the deadline REQUEST_TIMED_OUT.
func (p *partition) waitHW(ctx context.Context, last int64, epoch int32) *kerr.Error {
	ch := make(chan struct{}, 1)
	p.addWaiter(ch)
	defer p.removeWaiter(ch)
	for {
		hw := p.log.HighWatermark()
		// Leadership is checked after the high watermark is read. Lost in
		// epoch, it is never regained in it, so a leader in epoch now was
		// one when hw was read and hw was its own. Once a follower, this
		// replica takes its high watermark from the new leader, whose log
		// at last need not hold this write: hw > last proves nothing then.
		if !p.isLeader(epoch) {
			return errUnconfirmedAppend
		}
		if hw > last {
			if int32(p.isrSize()) < p.cfg.Load().minISR {
				return kerr.NotEnoughReplicasAfterAppend
			}
			return nil
		}
		select {
		case <-ch:
		case <-p.stopping:
			return errUnconfirmedAppend
		case <-ctx.Done():
			return kerr.RequestTimedOut
		}
	}
}

// appendedReplicated wakes the followers' parked fetches after an append to
// a replicated partition: they wait for the log end, not the high
// watermark, and the high watermark cannot move before they fetch again.
func (p *partition) appendedReplicated() {
	if p.replicated() {
		p.wake()
	}
}

// commit waits until the local log is durable through last and the high
// watermark has passed it: the acks=all condition, for produce and for the
// coordinators' own writes. epoch is the leader epoch the write was made in.
func (p *partition) commit(ctx context.Context, last int64, epoch int32) *kerr.Error {
	if err := p.log.Sync(ctx, last); err != nil {
		if errors.Is(err, storage.ErrClosed) {
			// Closed after the append (the replica moved or the broker
			// stops): followers may hold the write already.
			return errUnconfirmedAppend
		}
		return storageErr(err)
	}
	p.markDurable(last + 1)
	return p.waitHW(ctx, last, epoch)
}

// noteAppend starts making a broker-written append ending at last durable:
// the flusher under fsync=always, at once otherwise, so the high watermark
// follows even when nobody waits for the write. Caller holds p.mu (the
// flusher is never started after close).
func (p *partition) noteAppend(last int64) {
	if p.cfg.Load().store.Fsync == storage.FsyncAlways {
		p.requestFlush(last)
		return
	}
	p.markDurable(last + 1)
}

// brokerFenced reports whether the controller has fenced broker id (or does
// not know it): a fenced broker is never proposed for the ISR, since the
// controller takes fenced brokers out of ISRs and the two would undo each
// other (a broker in controlled shutdown still fetches for a moment).
func brokerFenced(b *Broker, id int32) bool {
	br, ok := b.node.State().Brokers[id]
	return !ok || br.Fenced
}

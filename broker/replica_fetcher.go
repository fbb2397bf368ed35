package broker

// The follower's side of partition replication: one fetcher per leader
// broker copies every partition this broker follows from that leader, with
// the Kafka Fetch protocol (v12: replica id, current leader epoch, last
// fetched epoch), as Kafka's ReplicaFetcherThread does.
//
// A fetched run of batches is appended unchanged (offsets, epochs and CRCs
// are the leader's; Append checks every CRC), made durable under the fsync
// policy, and only then is the next fetch sent: the leader takes a fetch
// offset as the follower's durable log end. The follower's high watermark
// is the leader's, capped by its own log end. Divergence after a leader
// change is found by the leader from last_fetched_epoch (KIP-320, the
// diverging_epoch field) and repaired by truncating to the end offset the
// leader gives; an out-of-range fetch offset is repaired from the leader's
// log start and end offsets (ListOffsets with this broker's replica id).

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/raft"
	"github.com/stromhq/strom/storage"
)

const (
	// replicaFetchVersion is the Fetch version followers send: the newest
	// with a top-level replica id and topic names.
	replicaFetchVersion = 12
	// replicaFetchMaxWait is replica.fetch.wait.max.ms, shorter than
	// Kafka's 500 ms: a partition this fetcher gains (a topic just created,
	// a replica just assigned) joins only its next request, and its leader
	// publishes no high watermark until every ISR follower has fetched it,
	// so the first acks=all writes to a new topic waited out the parked
	// request, up to the whole max wait (seen as a ~400 ms stall at the start
	// of three-node e2e runs). An idle follower now asks ten times a second
	// instead of twice, which costs next to nothing.
	replicaFetchMaxWait = 100 * time.Millisecond
	// replicaFetchPartitionBytes and replicaFetchResponseBytes bound one
	// fetch (replica.fetch.max.bytes and replica.fetch.response.max.bytes,
	// Kafka's defaults rounded up): a partition's share matches the
	// producers' largest batch, and the answer buffer a follower keeps per
	// leader stays small.
	replicaFetchPartitionBytes = 1 << 20
	replicaFetchResponseBytes  = 16 << 20
	// replicaBackoff is replica.fetch.backoff.ms: the pause after an error.
	replicaBackoff = 200 * time.Millisecond
	// replicaIOTimeout bounds one request on the wire beyond its max wait.
	replicaIOTimeout = 10 * time.Second
)

// fetcherManager owns the replica fetchers: one per leader broker this
// broker follows partitions of. The partition manager calls update after
// every reconcile; Close of the broker stops them all through stopAll.
type fetcherManager struct {
	b *Broker

	// mu guards fetchers and closed.
	mu       sync.Mutex
	fetchers map[int32]*replicaFetcher
	closed   bool

	// hold pauses every fetcher between fetches while set: tests use it to
	// make followers fall behind at a chosen point (fault injection).
	hold atomic.Bool
	// heldParts names partitions left out of every fetch (nil: none, the
	// only case outside tests). Tests freeze one partition's followers
	// with it while the rest of the cluster, the other internal
	// partitions included, replicates. A fetch already in flight may
	// still carry a partition just named; callers pause everything with
	// hold first to rule that out. Replaced whole under mu, never changed
	// in place.
	heldParts atomic.Pointer[map[topicPartition]bool]
}

// holdPartition leaves topic/index out of this broker's fetches until
// releasePartition (fault injection for tests).
func (m *fetcherManager) holdPartition(topic string, index int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	next := map[topicPartition]bool{{topic, index}: true}
	if cur := m.heldParts.Load(); cur != nil {
		for tp := range *cur {
			next[tp] = true
		}
	}
	m.heldParts.Store(&next)
}

// releasePartition undoes holdPartition and wakes the fetchers, which may
// be idle for want of any other partition to fetch.
func (m *fetcherManager) releasePartition(topic string, index int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur := m.heldParts.Load(); cur != nil {
		next := map[topicPartition]bool{}
		for tp := range *cur {
			if tp != (topicPartition{topic, index}) {
				next[tp] = true
			}
		}
		if len(next) == 0 {
			m.heldParts.Store(nil)
		} else {
			m.heldParts.Store(&next)
		}
	}
	for _, f := range m.fetchers {
		f.wake()
	}
}

func newFetcherManager(b *Broker) *fetcherManager {
	return &fetcherManager{b: b, fetchers: map[int32]*replicaFetcher{}}
}

// update points the fetchers at the leaders of the partitions in parts that
// this broker follows, as st says.
func (m *fetcherManager) update(st *raft.State, parts map[string][]*partition) {
	if m == nil {
		return
	}
	self := m.b.cfg.NodeID
	want := map[int32][]*partition{}
	addrs := map[int32]string{}
	for name, ps := range parts {
		t := st.Topics[name]
		if t == nil {
			continue
		}
		for _, p := range ps {
			if p == nil || int(p.index) >= len(t.Partitions) {
				continue
			}
			rp := t.Partitions[p.index]
			if rp.Leader < 0 || rp.Leader == self {
				continue
			}
			br, ok := st.Brokers[rp.Leader]
			if !ok {
				continue
			}
			want[rp.Leader] = append(want[rp.Leader], p)
			addrs[rp.Leader] = net.JoinHostPort(br.Host, strconv.Itoa(int(br.Port)))
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	for id, f := range m.fetchers {
		if len(want[id]) == 0 || addrs[id] != f.addr {
			f.stop()
			delete(m.fetchers, id)
		}
	}
	for id, ps := range want {
		f := m.fetchers[id]
		if f == nil {
			f = m.start(id, addrs[id])
			m.fetchers[id] = f
		}
		f.setPartitions(ps)
	}
}

// allHeld reports whether every fetcher has stopped between fetches under
// hold (tests wait for it before they write what followers must not see).
func (m *fetcherManager) allHeld() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, f := range m.fetchers {
		if !f.held.Load() {
			return false
		}
	}
	return true
}

// stopAll stops every fetcher for good (broker closing).
func (m *fetcherManager) stopAll() {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	for id, f := range m.fetchers {
		f.stop()
		delete(m.fetchers, id)
	}
}

// replicaFetcher copies partitions from one leader broker. Its goroutine is
// owned by the fetcherManager, which stops it with stop.
type replicaFetcher struct {
	b         *Broker
	hold      *atomic.Bool
	heldParts *atomic.Pointer[map[topicPartition]bool]
	leader    int32
	addr      string

	// mu guards parts and delayed.
	mu    sync.Mutex
	parts map[*partition]struct{}
	// delayed holds partitions not fetched until the given time, after an
	// error that only a metadata change can cure.
	delayed map[*partition]time.Time

	kick   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}

	// held is set while the fetcher obeys hold, or idles with nothing to
	// fetch: no fetch is in flight either way, and an idle fetcher checks
	// hold before it fetches again.
	held atomic.Bool
}

func (m *fetcherManager) start(leader int32, addr string) *replicaFetcher {
	ctx, cancel := context.WithCancel(m.b.ctx)
	f := &replicaFetcher{b: m.b, hold: &m.hold, heldParts: &m.heldParts, leader: leader, addr: addr, parts: map[*partition]struct{}{},
		delayed: map[*partition]time.Time{}, kick: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	go f.run(ctx)
	return f
}

func (f *replicaFetcher) stop() {
	f.cancel()
	<-f.done
}

// setPartitions replaces the fetched set; partitions new to it (or back
// after a leader change) are fetched at once.
func (f *replicaFetcher) setPartitions(ps []*partition) {
	f.mu.Lock()
	next := make(map[*partition]struct{}, len(ps))
	for _, p := range ps {
		next[p] = struct{}{}
		if _, had := f.parts[p]; !had {
			delete(f.delayed, p)
		}
	}
	f.parts = next
	f.mu.Unlock()
	f.wake()
}

// wake makes an idle fetcher look at its partitions again.
func (f *replicaFetcher) wake() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// due returns the partitions to fetch now, and how long until a delayed one
// is due (0 when none is delayed).
func (f *replicaFetcher) due(now time.Time) ([]*partition, time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*partition
	var next time.Duration
	held := f.heldParts.Load()
	for p := range f.parts {
		if held != nil && (*held)[topicPartition{p.topic, p.index}] {
			continue
		}
		if t, ok := f.delayed[p]; ok {
			if now.Before(t) {
				if d := t.Sub(now); next == 0 || d < next {
					next = d
				}
				continue
			}
			delete(f.delayed, p)
		}
		out = append(out, p)
	}
	return out, next
}

func (f *replicaFetcher) delay(p *partition) {
	f.mu.Lock()
	f.delayed[p] = time.Now().Add(replicaBackoff)
	f.mu.Unlock()
}

// run is the fetch loop: fetch, apply, repeat.
func (f *replicaFetcher) run(ctx context.Context) {
	defer close(f.done)
	var conn *peerConn
	defer func() {
		if conn != nil {
			conn.close()
		}
	}()
	log := f.b.log.With("leader", f.leader)
	for ctx.Err() == nil {
		if f.hold.Load() {
			f.held.Store(true)
			sleepCtx(ctx, 10*time.Millisecond)
			continue
		}
		f.held.Store(false)
		parts, next := f.due(time.Now())
		if throttled := f.dropThrottled(&parts); len(parts) == 0 && throttled {
			// Every due partition is a catching-up replica over the
			// follower rate: wait for the rate to fall.
			sleepCtx(ctx, replicaThrottleBackoff)
			continue
		}
		if len(parts) == 0 {
			var timer <-chan time.Time
			if next > 0 {
				timer = time.After(next)
			}
			f.held.Store(true)
			select {
			case <-ctx.Done():
			case <-f.kick:
			case <-timer:
			}
			continue
		}
		if conn == nil {
			var err error
			if conn, err = f.b.dialPeer(ctx, f.addr, "strom-replica-fetcher-"+strconv.Itoa(int(f.b.cfg.NodeID))); err != nil {
				log.Debug("replica fetcher: connect", "addr", f.addr, "err", err)
				sleepCtx(ctx, replicaBackoff)
				continue
			}
		}
		req, sent := f.buildFetch(parts)
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		if err := conn.do(ctx, req, resp, replicaFetchMaxWait+replicaIOTimeout); err != nil {
			if ctx.Err() == nil {
				log.Debug("replica fetcher: fetch", "addr", f.addr, "err", err)
			}
			conn.close()
			conn = nil
			sleepCtx(ctx, replicaBackoff)
			continue
		}
		if resp.ErrorCode != 0 {
			log.Debug("replica fetcher: fetch error", "err", kerr.ErrorForCode(resp.ErrorCode))
			sleepCtx(ctx, replicaBackoff)
			continue
		}
		f.apply(ctx, conn, resp, sent)
	}
}

// replicaThrottleBackoff is how long a fetcher whose partitions are all
// held back by the follower replication throttle waits before it looks
// again.
const replicaThrottleBackoff = 100 * time.Millisecond

// dropThrottled removes from parts the partitions this broker must not
// fetch now: out of the ISR, named in follower.replication.throttled.replicas
// and over follower.replication.throttled.rate (replication_throttle.go). It
// reports whether it removed any.
func (f *replicaFetcher) dropThrottled(parts *[]*partition) bool {
	st := f.b.node.State()
	if _, ok := f.b.replThrottle.bound(st, cfgFollowerThrottledRate); !ok {
		return false
	}
	n := len(*parts)
	*parts = slices.DeleteFunc(*parts, func(p *partition) bool {
		_, hold := f.b.replThrottle.followerThrottled(st, p.topic, p.index, p.inISR(f.b.cfg.NodeID))
		return hold
	})
	return len(*parts) < n
}

// sentPart is what the fetcher asked for one partition.
type sentPart struct {
	p      *partition
	offset int64
	epoch  int32
}

func (f *replicaFetcher) buildFetch(parts []*partition) (*kmsg.FetchRequest, map[string]map[int32]sentPart) {
	req := kmsg.NewPtrFetchRequest()
	req.Version = replicaFetchVersion
	req.ReplicaID = f.b.cfg.NodeID
	req.MaxWaitMillis = int32(replicaFetchMaxWait / time.Millisecond)
	req.MinBytes = 1
	req.MaxBytes = replicaFetchResponseBytes
	req.SessionID, req.SessionEpoch = 0, -1
	sent := map[string]map[int32]sentPart{}
	byTopic := map[string]int{}
	for _, p := range parts {
		i, ok := byTopic[p.topic]
		if !ok {
			t := kmsg.NewFetchRequestTopic()
			t.Topic = p.topic
			req.Topics = append(req.Topics, t)
			i = len(req.Topics) - 1
			byTopic[p.topic] = i
			sent[p.topic] = map[int32]sentPart{}
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = p.index
		rp.CurrentLeaderEpoch = p.leaderEpoch.Load()
		rp.FetchOffset = p.log.EndOffset()
		rp.LastFetchedEpoch = p.log.LatestEpoch()
		rp.LogStartOffset = p.log.LogStartOffset()
		rp.PartitionMaxBytes = replicaFetchPartitionBytes
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
		sent[p.topic][p.index] = sentPart{p: p, offset: rp.FetchOffset, epoch: rp.CurrentLeaderEpoch}
	}
	return req, sent
}

// apply appends what the leader sent, makes it durable, and moves the
// follower's high watermarks.
func (f *replicaFetcher) apply(ctx context.Context, conn *peerConn, resp *kmsg.FetchResponse, sent map[string]map[int32]sentPart) {
	type applied struct {
		p        *partition
		last     int64
		leaderHW int64
	}
	var done []applied
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			sp, ok := sent[rt.Topic][rp.Partition]
			if !ok {
				continue
			}
			p := sp.p
			switch err := kerr.ErrorForCode(rp.ErrorCode); {
			case err == nil:
			case errors.Is(err, kerr.OffsetOutOfRange):
				if err := f.resetOutOfRange(ctx, conn, sp); err != nil {
					f.b.log.Warn("replica fetcher: reset out-of-range offset", "topic", p.topic, "partition", p.index, "err", err)
					f.delay(p)
				}
				continue
			default:
				// Not (yet) the leader, an epoch mismatch, a deleted
				// topic: the next metadata change repoints us.
				f.delay(p)
				continue
			}
			if rp.DivergingEpoch.Epoch >= 0 || rp.DivergingEpoch.EndOffset >= 0 {
				f.truncate(sp, rp.DivergingEpoch.EndOffset, rp.DivergingEpoch.Epoch)
				continue
			}
			last := int64(-1)
			if recs := completeBatches(rp.RecordBatches); len(recs) > 0 {
				var err error
				if last, err = f.appendFetched(sp, recs); err != nil {
					f.b.log.Warn("replica fetcher: append", "topic", p.topic, "partition", p.index, "err", err)
					f.delay(p)
					continue
				}
				if counted, _ := f.b.replThrottle.followerThrottled(f.b.node.State(), p.topic, p.index, true); counted {
					f.b.replThrottle.record(f.b.replThrottle.follower, len(recs))
				}
			}
			if rp.LogStartOffset > p.log.LogStartOffset() {
				if err := p.log.DeleteRecordsBefore(min(rp.LogStartOffset, p.log.EndOffset())); err != nil && !errors.Is(err, storage.ErrClosed) {
					f.b.log.Warn("replica fetcher: advance log start", "topic", p.topic, "partition", p.index, "err", err)
				}
			}
			done = append(done, applied{p: p, last: last, leaderHW: rp.HighWatermark})
		}
	}
	// Make every append durable before the next fetch reports it; the
	// partitions' fsyncs run side by side.
	var wg sync.WaitGroup
	for i := range done {
		a := &done[i]
		if a.last < 0 {
			continue
		}
		if a.p.cfg.Load().store.Fsync != storage.FsyncAlways {
			a.p.markDurable(a.last + 1)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.p.log.Sync(ctx, a.last); err != nil {
				a.last = -2
				return
			}
			a.p.markDurable(a.last + 1)
		}()
	}
	wg.Wait()
	for _, a := range done {
		if a.leaderHW >= 0 {
			a.p.advanceHW(min(a.leaderHW, a.p.durable.Load(), a.p.log.EndOffset()))
		}
	}
}

// appendFetched appends the leader's batches if the partition is still the
// one they were fetched for (same epoch, same log end).
func (f *replicaFetcher) appendFetched(sp sentPart, recs []byte) (int64, error) {
	p := sp.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.leaderEpoch.Load() != sp.epoch || p.log.EndOffset() != sp.offset {
		return -1, nil // the partition moved on meanwhile; fetch again
	}
	info, err := p.log.Append(recs)
	if err != nil {
		return -1, fmt.Errorf("append fetched batches at %d: %w", sp.offset, err)
	}
	return info.LastOffset, nil
}

// truncate cuts the follower's log back to where it agrees with the leader.
func (f *replicaFetcher) truncate(sp sentPart, endOffset int64, epoch int32) {
	p := sp.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.leaderEpoch.Load() != sp.epoch {
		return
	}
	to := min(endOffset, p.log.EndOffset())
	if to < 0 {
		to = 0
	}
	if err := p.log.TruncateTo(to); err != nil {
		f.b.log.Warn("replica fetcher: truncate", "topic", p.topic, "partition", p.index, "to", to, "err", err)
		f.delay(p)
		return
	}
	p.resetDurable(p.log.EndOffset())
	f.b.log.Info("truncated diverging log", "topic", p.topic, "partition", p.index, "to", to, "leader_epoch_end", epoch)
}

// resetOutOfRange repairs a fetch offset the leader does not have: above its
// log end the follower truncates to it; below its log start the follower
// starts over there.
func (f *replicaFetcher) resetOutOfRange(ctx context.Context, conn *peerConn, sp sentPart) error {
	p := sp.p
	start, err := f.leaderOffset(ctx, conn, p, -2)
	if err != nil {
		return err
	}
	end, err := f.leaderOffset(ctx, conn, p, -1)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.leaderEpoch.Load() != sp.epoch || p.log.EndOffset() != sp.offset {
		return nil
	}
	switch {
	case sp.offset > end:
		err = p.log.TruncateTo(end)
	case sp.offset < start:
		err = p.log.TruncateFullyAndStartAt(start)
	default:
		return nil // in range again (the leader moved on): fetch again
	}
	if err != nil {
		return err
	}
	p.resetDurable(p.log.EndOffset())
	f.b.log.Info("reset follower log to the leader's range", "topic", p.topic, "partition", p.index,
		"fetch_offset", sp.offset, "leader_start", start, "leader_end", end)
	return nil
}

// leaderOffset asks the leader for a partition's log start (-2) or log end
// (-1; a replica is told the log end, not the high watermark).
func (f *replicaFetcher) leaderOffset(ctx context.Context, conn *peerConn, p *partition, ts int64) (int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = 4
	req.ReplicaID = f.b.cfg.NodeID
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = p.topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.CurrentLeaderEpoch, rp.Timestamp = p.index, p.leaderEpoch.Load(), ts
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	if err := conn.do(ctx, req, resp, replicaIOTimeout); err != nil {
		return -1, err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return -1, fmt.Errorf("list offsets of %s-%d: malformed answer", p.topic, p.index)
	}
	op := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(op.ErrorCode); err != nil {
		return -1, fmt.Errorf("list offsets of %s-%d: %w", p.topic, p.index, err)
	}
	return op.Offset, nil
}

// completeBatches trims a trailing partial batch (a leader may cut the last
// one at the byte limit).
func completeBatches(b []byte) []byte {
	n := 0
	for len(b)-n >= batchHeaderSize {
		h, err := storage.ParseBatchHeader(b[n:])
		if err != nil || h.Size() > len(b)-n {
			break
		}
		n += h.Size()
	}
	return b[:n]
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

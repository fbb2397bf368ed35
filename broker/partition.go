package broker

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stromhq/strom/storage"
)

// partition is one partition replica hosted by this broker.
//
// Ownership: the partitionManager creates and closes partitions; handlers use
// them between a lookup and the end of their request. A closed partition's log
// returns storage.ErrClosed, which handlers map to NOT_LEADER_OR_FOLLOWER (the
// topic was deleted or moved while the request ran).
type partition struct {
	topic   string
	topicID [16]byte
	index   int32
	log     *storage.Log

	// mu serializes the writers of log (Append, DeleteRecordsBefore,
	// AssignEpoch) and the idempotence checks that must see the producer
	// state of the previous append. acks=all waits happen after it is
	// released.
	mu sync.Mutex

	// cfg is the effective topic configuration; replaced whole on changes.
	cfg atomic.Pointer[partConfig]
	// leaderEpoch is the partition's current leader epoch from raft.
	leaderEpoch atomic.Int32

	// hwMu serializes high watermark moves so they only go forward even when
	// durability waits finish out of order.
	hwMu sync.Mutex

	// waitMu guards waiters: channels of fetch requests parked until new
	// data arrives. Each is signalled without blocking (capacity 1).
	waitMu  sync.Mutex
	waiters map[chan struct{}]struct{}

	// flusher makes acks=0/1 writes durable under fsync=always and then
	// moves the high watermark. Started on first use and stopped by close;
	// both under mu, so no flusher starts after the partition closed.
	flusher       *partFlusher
	flusherClosed bool

	// durable is the end of what is durable in the local log under the
	// fsync policy (exclusive); only raised, except by truncation.
	durable atomic.Int64
	// repl is the partition's replication state (replica.go).
	repl replState
	// stopping is closed when the broker starts to shut down: writes
	// waiting for the high watermark then answer errUnconfirmedAppend (the
	// client retries on the next leader) instead of holding Close.
	stopping <-chan struct{}
	// verifying holds the pending transaction verifications by producer id
	// (txn_verify.go); guarded by mu, nil until first used.
	verifying map[int64]verifyGuard
}

// partFlusher is a partition's one background fsync goroutine. Appends
// raise want and kick it; each round syncs up to the highest offset asked
// for, so a burst of appends costs one fsync (storage group commit folds it
// with concurrent acks=all syncs too).
type partFlusher struct {
	want   atomic.Int64 // highest last offset to make durable
	kick   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// requestFlush asks the flusher to make everything up to last durable.
// Caller holds p.mu.
func (p *partition) requestFlush(last int64) {
	if p.flusherClosed {
		return
	}
	f := p.flusher
	if f == nil {
		ctx, cancel := context.WithCancel(context.Background())
		f = &partFlusher{kick: make(chan struct{}, 1), ctx: ctx, cancel: cancel, done: make(chan struct{})}
		f.want.Store(-1)
		p.flusher = f
		go p.runFlusher(f)
	}
	for {
		cur := f.want.Load()
		if last <= cur || f.want.CompareAndSwap(cur, last) {
			break
		}
	}
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// runFlusher is the flusher goroutine; stopFlusher ends it.
func (p *partition) runFlusher(f *partFlusher) {
	defer close(f.done)
	synced := int64(-1)
	for {
		select {
		case <-f.ctx.Done():
			return
		case <-f.kick:
		}
		last := f.want.Load()
		if last <= synced {
			continue
		}
		// The high watermark moves only past what Sync made durable; on an
		// error (closed log, failed fsync) it stays, as before.
		if err := p.log.Sync(f.ctx, last); err != nil {
			continue
		}
		synced = last
		p.markDurable(last + 1)
	}
}

// stopFlusher stops the flusher for good (partition closing). Caller holds
// p.mu. Writes it had not synced yet are made durable by the log's Close.
func (p *partition) stopFlusher() {
	p.flusherClosed = true
	if f := p.flusher; f != nil {
		f.cancel()
		<-f.done
		p.flusher = nil
	}
}

// partConfig is what the request path needs from the topic's configs.
type partConfig struct {
	maxMessageBytes int32
	logAppendTime   bool
	tsBeforeMS      int64
	tsAfterMS       int64
	compression     string
	minISR          int32
	store           storage.Config
	raw             map[string]string // resolved value of every topic config
}

// addWaiter parks ch until the next append (or high watermark move).
func (p *partition) addWaiter(ch chan struct{}) {
	p.waitMu.Lock()
	if p.waiters == nil {
		p.waiters = map[chan struct{}]struct{}{}
	}
	p.waiters[ch] = struct{}{}
	p.waitMu.Unlock()
}

func (p *partition) removeWaiter(ch chan struct{}) {
	p.waitMu.Lock()
	delete(p.waiters, ch)
	p.waitMu.Unlock()
}

// advanceHW moves the high watermark forward to hw (never back) and wakes
// parked fetches. Leaders call it through maybeAdvanceHW (replica.go), which
// takes the smallest of the ISR's log ends and the local durable end: on one
// node that is what is durable under the fsync policy (the log end at once
// for interval/never, the fsynced offset for always), so consumers never see
// records a power loss could take back.
func (p *partition) advanceHW(hw int64) {
	p.hwMu.Lock()
	moved := hw > p.log.HighWatermark()
	if moved {
		p.log.SetHighWatermark(hw)
	}
	p.hwMu.Unlock()
	if moved {
		p.wake()
	}
}

// wake signals every parked fetch; they re-read and decide whether to answer.
func (p *partition) wake() {
	p.waitMu.Lock()
	for ch := range p.waiters {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	p.waitMu.Unlock()
}

// buildPartConfig resolves the topic's configs (topic overrides, broker
// dynamic configs, static broker configs, defaults) into a partConfig.
func (b *Broker) buildPartConfig(topicCfg map[string]string, nodeDyn, clusterDyn map[string]string) *partConfig {
	raw := make(map[string]string, len(topicConfigs))
	for name := range topicConfigs {
		raw[name] = resolveTopicConfig(name, topicCfg, nodeDyn, clusterDyn, b.staticConfigs).value
	}
	i64 := func(name string) int64 {
		n, err := strconv.ParseInt(strings.TrimSpace(raw[name]), 10, 64)
		if err != nil { // validated on the way in; fall back to Kafka's default
			n, _ = strconv.ParseInt(topicConfigs[name].def, 10, 64)
		}
		return n
	}
	ms := func(name string) time.Duration {
		n := i64(name)
		if n < 0 {
			return time.Duration(n)
		}
		if n > int64(time.Duration(1<<62)/time.Millisecond) {
			return time.Duration(1 << 62)
		}
		return time.Duration(n) * time.Millisecond
	}
	pc := &partConfig{
		maxMessageBytes: int32(i64("max.message.bytes")),
		logAppendTime:   raw["message.timestamp.type"] == "LogAppendTime",
		tsBeforeMS:      i64("message.timestamp.before.max.ms"),
		tsAfterMS:       i64("message.timestamp.after.max.ms"),
		compression:     raw["compression.type"],
		minISR:          int32(i64("min.insync.replicas")),
		raw:             raw,
	}
	sc := storage.DefaultConfig()
	sc.SegmentBytes = i64("segment.bytes")
	sc.SegmentMS = ms("segment.ms")
	sc.IndexIntervalBytes = int(i64("index.interval.bytes"))
	sc.RetentionMS = ms("retention.ms")
	if i64("retention.ms") < 0 {
		sc.RetentionMS = -1
	}
	sc.RetentionBytes = i64("retention.bytes")
	sc.Compact = strings.Contains(raw["cleanup.policy"], "compact")
	sc.Delete = strings.Contains(raw["cleanup.policy"], "delete")
	sc.DeleteRetention = ms("delete.retention.ms")
	switch b.cfg.Fsync {
	case "always":
		sc.Fsync = storage.FsyncAlways
	case "interval":
		sc.Fsync = storage.FsyncInterval
		sc.FsyncInterval = b.cfg.FsyncInterval
	case "never":
		sc.Fsync = storage.FsyncNever
	}
	pc.store = sc
	return pc
}

// checkInvariants fails loudly, under the invariants build tag only, when the
// partition's offsets are inconsistent.
// Invariant: logStart <= hw <= leo, and the leader epoch cache never runs
// ahead of the partition's leader epoch.
// Caller holds p.mu, so no append moves the offsets meanwhile.
func (p *partition) checkInvariants() {
	if !invariantsOn {
		return
	}
	ls, hw, leo := p.log.LogStartOffset(), p.log.HighWatermark(), p.log.EndOffset()
	if ls > hw || hw > leo {
		panic(fmt.Sprintf("invariant: %s-%d log start %d, high watermark %d, log end %d", p.topic, p.index, ls, hw, leo))
	}
	if e := p.log.LatestEpoch(); e > p.leaderEpoch.Load() {
		panic(fmt.Sprintf("invariant: %s-%d log epoch %d ahead of leader epoch %d", p.topic, p.index, e, p.leaderEpoch.Load()))
	}
}

package broker

// The group coordinator: groups and committed offsets live in the internal
// compacted topic __consumer_offsets, as Kafka keeps them. The coordinator of
// a group is the leader of partition abs(javaHashCode(groupId)) % N of that
// topic. Each partition this broker leads is one shard: a mutex, the groups
// whose ids hash to it (package broker/group state machines), and the log
// they are persisted in.
//
// Records use Kafka's own schemas (kmsg.OffsetCommitKey/Value and
// kmsg.GroupMetadataKey/Value; for KIP-848 groups the ConsumerGroup* records
// of broker/group/records.go), so a Kafka tool reading the topic understands
// them. A shard is loaded on first use by replaying its partition from the log
// start to the high watermark; until then nothing about its groups is known.
//
// Ordering contract: every state change of a shard happens under shard.mu,
// including the append of the record that persists it, so records are in the
// order of the changes. Answers produced by the change (JoinGroup and
// SyncGroup results, commit results) are queued while the lock is held and
// released only after the records of the change were appended; the waiting
// reply then blocks until those records are durable (storage.Log.Sync, as
// acks=all) before the client sees the answer.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/broker/group"
	"github.com/stromhq/strom/raft"
	"github.com/stromhq/strom/storage"
)

// offsetsTopic is the internal topic holding groups and offsets.
const offsetsTopic = "__consumer_offsets"

// offsetMetadataMaxBytes is offset.metadata.max.bytes.
const offsetMetadataMaxBytes = 4096

// coordinatorTick is how often group timers (sessions, rebalance and sync
// timeouts, initial delays) are checked; it bounds their lateness.
const coordinatorTick = 50 * time.Millisecond

// coordinator owns the shards of the __consumer_offsets partitions this
// broker leads. Its tick goroutine is owned by the Broker (bgWG) and stops
// with the broker's context.
type coordinator struct {
	b   *Broker
	cfg group.Config

	// mu guards shards.
	mu     sync.Mutex
	shards map[int32]*shard
	// topicsVersion is the raft state version whose topics the last tick
	// checked offsets against; only the tick goroutine touches it.
	topicsVersion uint64
	// tickHook, for tests, runs in each tick between its decision to purge
	// and its first shard; nil in production.
	tickHook atomic.Pointer[func(purge bool)]
}

// shard is one __consumer_offsets partition led here and the groups it
// holds.
type shard struct {
	index int32
	// epoch is the partition's leader epoch when this shard took over; a
	// shard of another epoch is stale (leadership moved away and back, and
	// the log holds records this state never saw) and is replaced.
	epoch int32

	// mu guards every field below, the groups' state machines, and appends
	// to p's log made by the coordinator.
	mu     sync.Mutex
	p      *partition
	loaded bool
	groups map[string]*group.Group
	// queued holds answers produced under mu, released by finish after the
	// records of the change were appended.
	queued []func(syncTo internalWrite)
	// purgeOnTick is set by load: the log may hold offsets of topics
	// deleted while this broker did not coordinate the partition, so the
	// next tick checks them whatever the state's version.
	purgeOnTick bool
	// lastExpiry is when offsets were last checked for expiry.
	lastExpiry time.Time
	// txnOffsets holds offsets committed by open transactions, by producer
	// id; a COMMIT marker materializes them, an ABORT drops them.
	txnOffsets map[int64]txnOffsetSet
}

func newCoordinator(b *Broker) *coordinator {
	gc := group.DefaultConfig()
	gc.InitialRebalanceDelay = b.cfg.GroupInitialRebalanceDelay
	gc.MinSessionTimeout = b.cfg.GroupMinSessionTimeout
	gc.MaxSessionTimeout = b.cfg.GroupMaxSessionTimeout
	return &coordinator{b: b, cfg: gc, shards: map[int32]*shard{}}
}

// javaStringHash is Java's String.hashCode over UTF-16 code units.
func javaStringHash(s string) int32 {
	var h int32
	for _, r := range s {
		if r >= 0x10000 {
			r -= 0x10000
			h = 31*h + int32(0xD800+(r>>10))
			h = 31*h + int32(0xDC00+(r&0x3FF))
			continue
		}
		h = 31*h + r
	}
	return h
}

// groupPartition is Kafka's partitionFor: Utils.abs(hashCode) % n, where
// abs(MinInt32) is 0.
func groupPartition(groupID string, n int) int32 {
	h := javaStringHash(groupID)
	if h == -1<<31 {
		h = 0
	} else if h < 0 {
		h = -h
	}
	return h % int32(n)
}

// ensureOffsetsTopic creates __consumer_offsets (internal, compacted) if it
// does not exist yet, as Kafka does on the first FindCoordinator.
func (b *Broker) ensureOffsetsTopic(ctx context.Context) (*raft.Topic, *kerr.Error) {
	st := b.node.State()
	if t, ok := st.Topics[offsetsTopic]; ok {
		return t, nil
	}
	brokers := liveBrokers(st)
	if len(brokers) == 0 {
		return nil, kerr.CoordinatorNotAvailable
	}
	rf := min(int(b.cfg.OffsetsTopicReplicationFactor), len(brokers))
	id := raft.NewTopicID()
	parts, err := assignReplicas(st, id, 0, b.cfg.OffsetsTopicPartitions, int16(rf))
	if err != nil {
		return nil, kerr.CoordinatorNotAvailable
	}
	t := raft.Topic{
		Name: offsetsTopic, ID: id, Internal: true,
		Partitions: parts,
		Configs: map[string]string{
			"cleanup.policy":   "compact",
			"compression.type": "producer",
			"segment.bytes":    "104857600",
		},
	}
	switch _, err := b.apply(ctx, raft.CreateTopic{Topic: t}); {
	case err == nil:
		b.log.Info("created internal topic", "topic", offsetsTopic, "partitions", b.cfg.OffsetsTopicPartitions)
	case !errors.Is(err, raft.ErrTopicExists): // a concurrent FindCoordinator created it: fine
		b.log.Warn("create offsets topic", "err", err)
		return nil, kerr.CoordinatorNotAvailable
	}
	if t, ok := b.node.State().Topics[offsetsTopic]; ok {
		return t, nil
	}
	return nil, kerr.CoordinatorNotAvailable
}

// shardFor returns the loaded shard coordinating groupID, or the Kafka
// error telling the client to look elsewhere (NOT_COORDINATOR) or retry
// (COORDINATOR_LOAD_IN_PROGRESS).
func (c *coordinator) shardFor(groupID string) (*shard, *kerr.Error) {
	st := c.b.node.State()
	t, ok := st.Topics[offsetsTopic]
	if !ok || len(t.Partitions) == 0 {
		return nil, kerr.NotCoordinator
	}
	return c.shardAt(t, groupPartition(groupID, len(t.Partitions)))
}

// shardAt returns the loaded shard of partition idx of t (the offsets
// topic), loading it on first use.
func (c *coordinator) shardAt(t *raft.Topic, idx int32) (*shard, *kerr.Error) {
	if t.Partitions[idx].Leader != c.b.cfg.NodeID || !c.b.mayLead(c.b.node.State()) {
		return nil, kerr.NotCoordinator
	}
	p := c.b.parts.get(offsetsTopic, idx)
	if p == nil || p.topicID != t.ID {
		return nil, kerr.CoordinatorLoadInProgress
	}
	epoch := t.Partitions[idx].LeaderEpoch
	c.mu.Lock()
	sh := c.shards[idx]
	var stale *shard
	if sh == nil || sh.p != p || sh.epoch != epoch {
		stale = sh
		sh = &shard{index: idx, epoch: epoch, p: p, groups: map[string]*group.Group{}}
		c.shards[idx] = sh
	}
	c.mu.Unlock()
	if stale != nil {
		c.unload(stale)
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if !sh.loaded {
		if err := c.load(sh); err != nil {
			c.b.log.Error("load group coordinator partition", "partition", idx, "err", err)
			return nil, kerr.CoordinatorLoadInProgress
		}
	}
	return sh, nil
}

// unload retires a shard whose partition this broker no longer leads (or
// leads in a newer epoch): its groups die, so every request still waiting
// on them is answered and the client looks for the coordinator again.
func (c *coordinator) unload(sh *shard) {
	now := time.Now()
	sh.mu.Lock()
	for _, g := range sh.groups {
		g.MarkDead(now)
	}
	// A nil map marks the shard retired: getOrCreate refuses to create
	// groups in it, so a handler that looked it up just before retirement
	// cannot write through it.
	sh.groups = nil
	sh.loaded = true // never load a retired shard again
	q := sh.queued
	sh.queued = nil
	sh.mu.Unlock()
	for _, fn := range q {
		fn(noWrite)
	}
}

// ledShards loads and returns every shard this broker coordinates, so
// restored groups' timers run and ListGroups sees every group.
func (c *coordinator) ledShards() []*shard {
	t, ok := c.b.node.State().Topics[offsetsTopic]
	if !ok {
		return nil
	}
	var out []*shard
	for _, p := range t.Partitions {
		if p.Leader != c.b.cfg.NodeID {
			c.mu.Lock()
			sh := c.shards[p.Index]
			delete(c.shards, p.Index)
			c.mu.Unlock()
			if sh != nil {
				c.unload(sh)
			}
			continue
		}
		if sh, e := c.shardAt(t, p.Index); e == nil {
			out = append(out, sh)
		}
	}
	return out
}

// load replays the shard's partition into its groups. sh.mu must be held.
func (c *coordinator) load(sh *shard) error {
	now := time.Now()
	lg := sh.p.log
	// Everything in the log counts, as in Kafka's coordinator: records past
	// the high watermark were written by an earlier leader and stay, since
	// followers truncate to the leader, not the other way round.
	hw := lg.EndOffset()
	off := lg.LogStartOffset()
	metas := map[string]*kmsg.GroupMetadataValue{}
	consumers := map[string]map[group.RecordKey][]byte{}
	offsets := map[string]map[group.TopicPartition]*group.Offset{}
	pending := map[int64]map[string]map[group.TopicPartition]*group.Offset{}
	for off < hw {
		sl, err := lg.Read(off, 1<<20, hw)
		if err != nil {
			return fmt.Errorf("read %s-%d at %d: %w", offsetsTopic, sh.index, off, err)
		}
		data, err := sl.Bytes()
		sl.Release()
		if err != nil {
			return fmt.Errorf("read %s-%d at %d: %w", offsetsTopic, sh.index, off, err)
		}
		if len(data) == 0 {
			break
		}
		next := off
		for len(data) >= batchHeaderSize {
			h, err := storage.ParseBatchHeader(data)
			if err != nil || h.Size() > len(data) {
				return fmt.Errorf("parse batch of %s-%d at %d: %w", offsetsTopic, sh.index, next, err)
			}
			batch := data[:h.Size()]
			data = data[h.Size():]
			next = h.LastOffset() + 1
			if h.IsControl() {
				replayMarker(h, batch, pending, offsets)
				continue
			}
			raw, err := storage.Decompress(h.Compression(), batch[batchHeaderSize:])
			if err != nil {
				return fmt.Errorf("decompress batch of %s-%d at %d: %w", offsetsTopic, sh.index, h.BaseOffset, err)
			}
			target := offsets
			if h.IsTransactional() {
				if pending[h.ProducerID] == nil {
					pending[h.ProducerID] = map[string]map[group.TopicPartition]*group.Offset{}
				}
				target = pending[h.ProducerID]
			}
			if _, err := parseRecords(raw, func(_ int, r recordView) error {
				replayRecord(r.key, r.value, metas, consumers, target)
				return nil
			}); err != nil {
				return fmt.Errorf("records of %s-%d at %d: %w", offsetsTopic, sh.index, h.BaseOffset, err)
			}
		}
		if next <= off {
			break
		}
		off = next
	}
	// The log names topics only: an offset belongs to the topic of its name
	// now. (One whose topic is gone, or was re-created since, is purged by
	// the next tick that sees the change.)
	st := c.b.node.State()
	stamp := func(os map[string]map[group.TopicPartition]*group.Offset) {
		for _, m := range os {
			for tp, o := range m {
				if t, ok := st.Topics[tp.Topic]; ok {
					o.TopicID = t.ID
				}
			}
		}
	}
	stamp(offsets)
	for _, gs := range pending {
		stamp(gs)
	}
	for id, v := range metas {
		g := group.New(id, c.cfg, now)
		g.Restore(v, now)
		sh.groups[id] = g
	}
	for id, recs := range consumers {
		g := sh.groups[id]
		if g == nil {
			g = group.New(id, c.cfg, now)
		}
		if g.RestoreConsumer(recs, now, c.b.cfg.ConsumerGroupSessionTimeout) {
			sh.groups[id] = g
		}
	}
	for id, os := range offsets {
		g := sh.groups[id]
		if g == nil {
			g = group.New(id, c.cfg, now)
			sh.groups[id] = g
		}
		for tp, o := range os {
			g.Commit(tp, *o)
		}
	}
	sh.txnOffsets = map[int64]txnOffsetSet{}
	for pid, gs := range pending {
		set := txnOffsetSet{}
		for id, os := range gs {
			for tp, o := range os {
				set.add(id, tp, *o)
			}
		}
		sh.txnOffsets[pid] = set
	}
	sh.loaded = true
	sh.purgeOnTick = true
	sh.lastExpiry = now
	return nil
}

// replayRecord applies one __consumer_offsets record; a later record for a
// key replaces an earlier one and a nil value (tombstone) deletes it.
// Records it cannot decode are skipped: they were not written by us, and a
// coordinator must not refuse to start because of them. Consumer-protocol
// group records (types 3-8) are collected raw per group for
// Group.RestoreConsumer, which decodes them; a group is of the type whose
// metadata record came last (a conversion writes the new type's record
// after the old one's).
func replayRecord(key, value []byte, metas map[string]*kmsg.GroupMetadataValue, consumers map[string]map[group.RecordKey][]byte, offsets map[string]map[group.TopicPartition]*group.Offset) {
	if len(key) < 2 {
		return
	}
	if t := int16(binary.BigEndian.Uint16(key)); group.IsConsumerRecordType(t) {
		k, err := group.ParseRecordKey(key)
		if err != nil {
			return
		}
		if value == nil {
			delete(consumers[k.Group], k)
			if len(consumers[k.Group]) == 0 {
				delete(consumers, k.Group)
			}
			return
		}
		if k.Type == group.RecordConsumerGroupMetadata {
			delete(metas, k.Group)
		}
		if consumers[k.Group] == nil {
			consumers[k.Group] = map[group.RecordKey][]byte{}
		}
		consumers[k.Group][k] = value
		return
	}
	switch binary.BigEndian.Uint16(key) {
	case 0, 1:
		var k kmsg.OffsetCommitKey
		if k.ReadFrom(key) != nil {
			return
		}
		tp := group.TopicPartition{Topic: k.Topic, Partition: k.Partition}
		if value == nil {
			delete(offsets[k.Group], tp)
			return
		}
		var v kmsg.OffsetCommitValue
		if v.ReadFrom(value) != nil {
			return
		}
		if offsets[k.Group] == nil {
			offsets[k.Group] = map[group.TopicPartition]*group.Offset{}
		}
		le := v.LeaderEpoch
		if v.Version < 3 {
			le = -1
		}
		exp := int64(-1)
		if v.Version == 1 {
			exp = v.ExpireTimestamp
		}
		offsets[k.Group][tp] = &group.Offset{Offset: v.Offset, LeaderEpoch: le, Metadata: v.Metadata, CommitTime: v.CommitTimestamp, ExpireTime: exp}
	case 2:
		var k kmsg.GroupMetadataKey
		if k.ReadFrom(key) != nil {
			return
		}
		if value == nil {
			delete(metas, k.Group)
			delete(offsets, k.Group)
			return
		}
		v := new(kmsg.GroupMetadataValue)
		if v.ReadFrom(value) != nil {
			return
		}
		metas[k.Group] = v
		delete(consumers, k.Group)
	}
}

// record is one key/value of __consumer_offsets; a nil value is a tombstone.
type record struct{ key, value []byte }

func offsetKey(g string, tp group.TopicPartition) []byte {
	k := kmsg.NewOffsetCommitKey()
	k.Version = 1
	k.Group, k.Topic, k.Partition = g, tp.Topic, tp.Partition
	return k.AppendTo(nil)
}

func offsetValue(o group.Offset) []byte {
	v := kmsg.NewOffsetCommitValue()
	v.Version = 3
	if o.ExpireTime >= 0 {
		v.Version = 1
		v.ExpireTimestamp = o.ExpireTime
	}
	v.Offset, v.LeaderEpoch, v.Metadata, v.CommitTimestamp = o.Offset, o.LeaderEpoch, o.Metadata, o.CommitTime
	return v.AppendTo(nil)
}

func groupKey(g string) []byte {
	k := kmsg.NewGroupMetadataKey()
	k.Version = 2
	k.Group = g
	return k.AppendTo(nil)
}

// buildBatch encodes records as one uncompressed v2 batch with base offset
// 0, no producer, timestamps ts.
func buildBatch(recs []record, ts int64) []byte {
	var body []byte
	var rec []byte
	appendBytes := func(dst, b []byte) []byte {
		if b == nil {
			return binary.AppendVarint(dst, -1)
		}
		dst = binary.AppendVarint(dst, int64(len(b)))
		return append(dst, b...)
	}
	for i, r := range recs {
		rec = rec[:0]
		rec = append(rec, 0)                     // attributes
		rec = binary.AppendVarint(rec, 0)        // timestamp delta
		rec = binary.AppendVarint(rec, int64(i)) // offset delta
		rec = appendBytes(rec, r.key)
		rec = appendBytes(rec, r.value)
		rec = binary.AppendVarint(rec, 0) // headers
		body = binary.AppendVarint(body, int64(len(rec)))
		body = append(body, rec...)
	}
	b := make([]byte, batchHeaderSize, batchHeaderSize+len(body))
	be := binary.BigEndian
	be.PutUint32(b[batchLengthPos:], uint32(batchHeaderSize-12+len(body)))
	b[magicPos] = 2
	be.PutUint32(b[lastOffsetDeltaPos:], uint32(len(recs)-1))
	be.PutUint64(b[baseTimestampPos:], uint64(ts))
	be.PutUint64(b[maxTimestampPos:], uint64(ts))
	be.PutUint64(b[43:], ^uint64(0)) // producer id -1
	be.PutUint16(b[51:], 0xffff)     // producer epoch -1
	be.PutUint32(b[53:], 0xffffffff) // base sequence -1
	be.PutUint32(b[recordsCountPos:], uint32(len(recs)))
	b = append(b, body...)
	setBatchCRC(b)
	return b
}

// appendRecords writes recs to the shard's partition. sh.mu must be held
// (it orders the coordinator's appends).
func (sh *shard) appendRecords(recs []record, now time.Time) (internalWrite, error) {
	if len(recs) == 0 {
		return noWrite, nil
	}
	return appendInternal(sh.p, buildBatch(recs, now.UnixMilli()))
}

// deliver queues an answer to release after the current change is
// persisted. sh.mu must be held.
func (sh *shard) deliver(fn func(syncTo internalWrite)) { sh.queued = append(sh.queued, fn) }

// finish persists the metadata of the given groups if they changed, then
// releases the queued answers with the write they must wait for. sh.mu
// must be held. extra records (offset commits, tombstones) go first in the
// same batch.
func (c *coordinator) finish(sh *shard, now time.Time, extra []record, gs ...*group.Group) (internalWrite, error) {
	recs := extra
	for _, g := range gs {
		if g == nil {
			continue
		}
		if g.TakeDirty() {
			recs = append(recs, groupRecord(g, now))
		}
		recs = appendConsumerRecords(recs, g.ConsumerRecords())
	}
	last, err := sh.appendRecords(recs, now)
	if err != nil {
		c.b.log.Error("persist group state", "err", err)
		last = failedWrite
		for _, g := range gs {
			if g != nil {
				g.ConsumerRecordsLost()
			}
		}
	}
	q := sh.queued
	sh.queued = nil
	for _, fn := range q {
		fn(last)
	}
	return last, err
}

// appendConsumerRecords converts consumer-group records for appendRecords.
func appendConsumerRecords(recs []record, crs []group.ConsumerRecord) []record {
	for _, r := range crs {
		recs = append(recs, record{key: r.Key, value: r.Value})
	}
	return recs
}

// groupRecord is the metadata record of g; a Dead group gets a tombstone.
func groupRecord(g *group.Group, now time.Time) record {
	if g.State() == group.Dead {
		return record{key: groupKey(g.ID())}
	}
	v := g.Snapshot()
	return record{key: groupKey(g.ID()), value: v.AppendTo(nil)}
}

// appendFailed answers a group request whose append to __consumer_offsets
// failed. The replica stopped leading (the shard is about to be unloaded)
// or its log failed, and Kafka answers both NOT_COORDINATOR: the client
// finds the coordinator again and retries, where UNKNOWN_SERVER_ERROR
// would fail a consumer's commit outright.
var appendFailed = kerr.NotCoordinator

// waitDurable blocks until the shard's write w is durable and replicated
// (noWrite: nothing was written; failedWrite: the write failed).
func (sh *shard) waitDurable(ctx context.Context, w internalWrite) *kerr.Error {
	switch {
	case w == noWrite:
		return nil
	case w.p == nil: // failedWrite
		return appendFailed
	}
	if err := w.durable(ctx); err != nil {
		return kerr.CoordinatorNotAvailable
	}
	return nil
}

// readBarrier is what an answer built from the shard's state must wait
// for before it is sent: every record the shard's log holds now, or
// noWrite when the high watermark already covers them. sh.mu must be
// held; the state read under it reflects no record beyond the log end,
// as every change is appended under mu before it is applied.
func (sh *shard) readBarrier() internalWrite {
	end := sh.p.log.EndOffset()
	if end <= sh.p.log.HighWatermark() {
		return noWrite
	}
	return internalWrite{p: sh.p, last: end - 1, epoch: sh.epoch}
}

// run starts the coordinator's timer loop; it stops with the broker.
func (c *coordinator) run(ctx context.Context) {
	t := time.NewTicker(coordinatorTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			c.shutdown()
			return
		case <-t.C:
			c.tick(time.Now())
		}
	}
}

func (c *coordinator) loadedShards() []*shard {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*shard, 0, len(c.shards))
	for _, sh := range c.shards {
		out = append(out, sh)
	}
	return out
}

// tick fires due group timers and, every retention check interval, expires
// offsets and drops empty groups without offsets.
func (c *coordinator) tick(now time.Time) {
	st := c.b.node.State()
	purge := st.Version != c.topicsVersion
	c.topicsVersion = st.Version
	if h := c.tickHook.Load(); h != nil {
		(*h)(purge)
	}
	for _, sh := range c.ledShards() {
		sh.mu.Lock()
		if !sh.loaded {
			sh.mu.Unlock()
			continue
		}
		var dirty []*group.Group
		for _, g := range sh.groups {
			g.Tick(now)
			dirty = append(dirty, g)
		}
		var extra []record
		if purge || sh.purgeOnTick {
			sh.purgeOnTick = false
			// The state is read again under sh.mu: a commit that took
			// sh.mu before validated its topics against a state no newer
			// than this one, while st may predate a topic created and
			// committed to since the tick began, which purging against
			// st would take for a deleted one.
			extra = c.purgeDeletedTopics(sh, c.b.node.State())
		}
		if now.Sub(sh.lastExpiry) >= c.b.cfg.OffsetsRetentionCheckInterval {
			sh.lastExpiry = now
			extra = append(extra, c.expire(sh, now)...)
		}
		_, _ = c.finish(sh, now, extra, dirty...)
		sh.mu.Unlock()
	}
}

// purgeDeletedTopics removes the offsets of topics that no longer exist
// (Kafka's onPartitionsDeleted) and returns their tombstones, so a topic
// created again under the same name does not inherit old positions.
// Commits name only existing topics, so a missing topic was deleted, and
// so was one whose id is no longer the offset's (deleted and created
// again between two ticks). sh.mu must be held.
func (c *coordinator) purgeDeletedTopics(sh *shard, st *raft.State) []record {
	var recs []record
	for id, g := range sh.groups {
		for _, tp := range g.Offsets() {
			o, _ := g.OffsetOf(tp)
			t, ok := st.Topics[tp.Topic]
			if !ok || int(tp.Partition) >= len(t.Partitions) || (o.TopicID != [16]byte{} && o.TopicID != t.ID) {
				g.DeleteOffset(tp)
				recs = append(recs, record{key: offsetKey(id, tp)})
			}
		}
	}
	return recs
}

// expire removes expired offsets and deletes empty groups left without
// offsets, returning their tombstones. sh.mu must be held.
func (c *coordinator) expire(sh *shard, now time.Time) []record {
	var recs []record
	ids := make([]string, 0, len(sh.groups))
	for id := range sh.groups {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		g := sh.groups[id]
		for _, tp := range g.Expire(now, c.b.cfg.OffsetsRetention) {
			g.DeleteOffset(tp)
			recs = append(recs, record{key: offsetKey(id, tp)})
		}
		if g.Removable() {
			recs = appendConsumerRecords(recs, g.ConsumerTombstones())
			g.MarkDead(now)
			delete(sh.groups, id)
			recs = append(recs, record{key: groupKey(id)})
		}
	}
	return recs
}

// shutdown answers every waiting request (the broker is stopping): groups
// are marked dead so held joins and syncs end with COORDINATOR_NOT_AVAILABLE
// and the clients look for the coordinator again.
func (c *coordinator) shutdown() {
	now := time.Now()
	for _, sh := range c.loadedShards() {
		sh.mu.Lock()
		for _, g := range sh.groups {
			g.MarkDead(now)
		}
		q := sh.queued
		sh.queued = nil
		sh.mu.Unlock()
		for _, fn := range q {
			fn(noWrite)
		}
	}
}

// getOrCreate returns the group, creating an Empty one when create is set.
// sh.mu must be held.
func (c *coordinator) getOrCreate(sh *shard, id string, create bool, now time.Time) *group.Group {
	g := sh.groups[id]
	if g == nil && create && sh.groups != nil {
		g = group.New(id, c.cfg, now)
		sh.groups[id] = g
	}
	return g
}

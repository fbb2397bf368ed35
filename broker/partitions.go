package broker

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stromhq/strom/raft"
	"github.com/stromhq/strom/storage"
)

// partitionMetadataFile records the topic ID of a partition directory, in
// Kafka's format, so a directory left by a deleted topic is recognized even
// when a new topic with the same name exists.
const partitionMetadataFile = "partition.metadata"

// partitionManager keeps the set of open partition logs equal to what the raft
// state says this broker hosts: it opens logs of new partitions, applies
// config and leader-epoch changes, and closes and deletes the logs of deleted
// topics.
//
// reconcile runs on the manager's subscription goroutine and, synchronously,
// from handlers that just applied a raft command (so a created topic is
// writable when CreateTopics answers); reconcileMu serializes the two.
type partitionManager struct {
	b *Broker

	reconcileMu sync.Mutex
	lastVersion uint64 // raft state version last reconciled; reconcileMu held

	// mu guards parts; handlers take the read lock for lookups.
	mu sync.RWMutex
	// parts maps a topic name to its partitions by index; nil entries are
	// partitions this broker does not host.
	parts map[string][]*partition
}

func newPartitionManager(b *Broker) *partitionManager {
	return &partitionManager{b: b, parts: map[string][]*partition{}}
}

// get returns the hosted partition topic/index, or nil.
func (m *partitionManager) get(topic string, index int32) *partition {
	m.mu.RLock()
	defer m.mu.RUnlock()
	ps := m.parts[topic]
	if index < 0 || int(index) >= len(ps) {
		return nil
	}
	return ps[index]
}

// all returns every hosted partition.
func (m *partitionManager) all() []*partition {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []*partition
	for _, ps := range m.parts {
		for _, p := range ps {
			if p != nil {
				out = append(out, p)
			}
		}
	}
	return out
}

func partitionDir(dataDir, topic string, index int32) string {
	return filepath.Join(dataDir, topic+"-"+strconv.Itoa(int(index)))
}

// reconcile brings the open logs in line with the current raft state.
// Failures to open one partition are logged and retried on the next change;
// they do not stop the others.
func (m *partitionManager) reconcile() {
	m.reconcileMu.Lock()
	defer m.reconcileMu.Unlock()
	st := m.b.node.State()
	if st == nil || (st.Version == m.lastVersion && m.lastVersion != 0) {
		return
	}
	m.lastVersion = st.Version
	self := m.b.cfg.NodeID
	nodeDyn := st.BrokerConfigs[strconv.Itoa(int(self))]
	clusterDyn := st.BrokerConfigs[""]

	m.mu.RLock()
	current := maps.Clone(m.parts)
	m.mu.RUnlock()

	// Pass 1: close and delete logs this broker no longer hosts (topic
	// deleted or recreated under a new ID, partition gone or moved away)
	// before opening anything: a recreated topic reuses the directory name.
	keep := func(name string, p *partition) bool {
		t, ok := st.Topics[name]
		if !ok || t.ID != p.topicID || int(p.index) >= len(t.Partitions) {
			return false
		}
		return slices.Contains(t.Partitions[p.index].Replicas, self)
	}
	var gone []*partition
	for name, ps := range current {
		for _, p := range ps {
			if p != nil && !keep(name, p) {
				gone = append(gone, p)
			}
		}
	}
	if len(gone) > 0 {
		goneSet := map[*partition]bool{}
		for _, p := range gone {
			goneSet[p] = true
		}
		pruned := make(map[string][]*partition, len(current))
		for name, ps := range current {
			ps = slices.Clone(ps)
			for i, p := range ps {
				if goneSet[p] {
					ps[i] = nil
				}
			}
			pruned[name] = ps
		}
		current = pruned
		m.mu.Lock()
		m.parts = pruned
		m.mu.Unlock()
		for _, p := range gone {
			m.remove(p)
		}
	}

	// Pass 2: open new partitions, apply config and leader-epoch changes.
	next := make(map[string][]*partition, len(st.Topics))
	for name, t := range st.Topics {
		old := current[name]
		pc := m.b.buildPartConfig(t.Configs, nodeDyn, clusterDyn)
		ps := make([]*partition, len(t.Partitions))
		for _, rp := range t.Partitions {
			if rp.Index < 0 || int(rp.Index) >= len(ps) || !slices.Contains(rp.Replicas, self) {
				continue
			}
			var p *partition
			if int(rp.Index) < len(old) {
				p = old[rp.Index]
			}
			if p == nil {
				var err error
				if p, err = m.open(t, rp, pc); err != nil {
					m.b.log.Error("open partition", "topic", name, "partition", rp.Index, "err", err)
					m.lastVersion = 0 // retry on the next state change
					continue
				}
			} else if !maps.Equal(p.cfg.Load().raw, pc.raw) {
				p.log.SetConfig(pc.store)
				p.cfg.Store(pc)
			}
			m.setLeaderEpoch(p, rp.LeaderEpoch, rp.Leader == self)
			if p.setRaftState(self, t.ID, &rp, p.log.EndOffset()) {
				// A new epoch or role: acks=all waits re-check their
				// leadership, and the high watermark is recomputed.
				p.wake()
				p.maybeAdvanceHW()
			}
			ps[rp.Index] = p
		}
		next[name] = ps
	}
	m.mu.Lock()
	m.parts = next
	m.mu.Unlock()
	m.b.fetchers.update(st, next)
}

// setLeaderEpoch records a new leader epoch; a leader also starts it in the
// log's leader-epoch cache at the current end offset. A follower does not:
// its cache is filled from the epochs stamped in the batches it copies, so
// that it still names the epochs its records were written in when it tells
// the leader where it stands (last_fetched_epoch).
func (m *partitionManager) setLeaderEpoch(p *partition, epoch int32, leader bool) {
	p.leaderEpoch.Store(epoch)
	if !leader {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.log.LatestEpoch() < epoch {
		if err := p.log.AssignEpoch(epoch, p.log.EndOffset()); err != nil {
			m.b.log.Error("assign leader epoch", "topic", p.topic, "partition", p.index, "epoch", epoch, "err", err)
		}
	}
}

// open opens (creating if needed) the log of one partition. A directory left
// by an older topic of the same name (other topic ID) is deleted first.
func (m *partitionManager) open(t *raft.Topic, rp raft.Partition, pc *partConfig) (*partition, error) {
	index := rp.Index
	dir := partitionDir(m.b.cfg.DataDir, t.Name, index)
	if id, ok := readPartitionMetadata(dir); ok && id != t.ID {
		if err := os.RemoveAll(dir); err != nil {
			return nil, fmt.Errorf("remove stale partition dir %s: %w", dir, err)
		}
	}
	lg, err := storage.Open(dir, pc.store, storage.WithLogger(m.b.log.With("topic", t.Name, "partition", index)))
	if err != nil {
		return nil, fmt.Errorf("open log %s: %w", dir, err)
	}
	if err := writePartitionMetadata(dir, t.ID); err != nil {
		_ = lg.Close()
		return nil, err
	}
	p := &partition{topic: t.Name, topicID: t.ID, index: index, log: lg, stopping: m.b.ctx.Done()}
	p.cfg.Store(pc)
	// After recovery (which truncated any torn tail) make the whole log
	// durable once. With one replica the high watermark is what is durable,
	// so everything in the log counts; a replicated partition keeps its
	// checkpointed high watermark, which its leader's moves.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	err = lg.Sync(ctx, lg.EndOffset()-1)
	cancel()
	if err != nil {
		_ = lg.Close()
		return nil, fmt.Errorf("sync recovered log %s: %w", dir, err)
	}
	p.durable.Store(lg.EndOffset())
	if len(rp.Replicas) <= 1 {
		lg.SetHighWatermark(lg.EndOffset())
	}
	return p, nil
}

// remove closes a partition's log and deletes its directory (topic deleted or
// recreated). Parked fetches are woken so they notice.
func (m *partitionManager) remove(p *partition) {
	p.stopLeading()
	p.mu.Lock()
	p.stopFlusher()
	err := p.log.Close()
	p.mu.Unlock()
	if err != nil && !errors.Is(err, storage.ErrClosed) {
		m.b.log.Warn("close log of deleted partition", "topic", p.topic, "partition", p.index, "err", err)
	}
	p.wake()
	if err := os.RemoveAll(p.log.Dir()); err != nil {
		m.b.log.Error("delete partition dir", "dir", p.log.Dir(), "err", err)
		return
	}
	m.b.log.Info("deleted partition", "topic", p.topic, "partition", p.index)
}

// closeAll closes every open log cleanly (fsync, checkpoints).
func (m *partitionManager) closeAll() error {
	m.reconcileMu.Lock()
	defer m.reconcileMu.Unlock()
	m.mu.Lock()
	parts := m.parts
	m.parts = map[string][]*partition{}
	m.mu.Unlock()
	var errs []error
	for _, ps := range parts {
		for _, p := range ps {
			if p == nil {
				continue
			}
			p.stopLeading()
			p.mu.Lock()
			p.stopFlusher()
			if !p.replicated() {
				// One replica: all of it is committed once Close syncs it.
				p.log.SetHighWatermark(p.log.EndOffset())
			}
			if err := p.log.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close %s-%d: %w", p.topic, p.index, err))
			}
			p.mu.Unlock()
			p.wake()
		}
	}
	return errors.Join(errs...)
}

// removeStrayDirs deletes partition directories (those with a
// partition.metadata file) whose topic no longer exists in the raft state:
// topics deleted while this broker was down.
func (m *partitionManager) removeStrayDirs() {
	st := m.b.node.State()
	ents, err := os.ReadDir(m.b.cfg.DataDir)
	if err != nil {
		m.b.log.Warn("scan data dir", "err", err)
		return
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(m.b.cfg.DataDir, e.Name())
		id, ok := readPartitionMetadata(dir)
		if !ok {
			continue
		}
		i := strings.LastIndexByte(e.Name(), '-')
		if i > 0 {
			if t, ok := st.TopicsByID[id]; ok && t.Name == e.Name()[:i] {
				continue
			}
		}
		if err := os.RemoveAll(dir); err != nil {
			m.b.log.Warn("remove stray partition dir", "dir", dir, "err", err)
			continue
		}
		m.b.log.Info("removed partition dir of deleted topic", "dir", dir)
	}
}

func readPartitionMetadata(dir string) ([16]byte, bool) {
	var id [16]byte
	data, err := os.ReadFile(filepath.Join(dir, partitionMetadataFile))
	if err != nil {
		return id, false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "topic_id: "); ok {
			raw, err := base64.RawURLEncoding.DecodeString(strings.TrimSpace(v))
			if err != nil || len(raw) != 16 {
				return id, false
			}
			copy(id[:], raw)
			return id, true
		}
	}
	return id, false
}

func writePartitionMetadata(dir string, id [16]byte) error {
	path := filepath.Join(dir, partitionMetadataFile)
	if old, ok := readPartitionMetadata(dir); ok && old == id {
		return nil
	}
	data := "version: 0\ntopic_id: " + base64.RawURLEncoding.EncodeToString(id[:]) + "\n"
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}

package broker

// Transactional offset commits in the group coordinator: TxnOffsetCommit
// writes offset records to __consumer_offsets inside the producer's
// transaction (a transactional batch with its producer id and epoch). They
// stay pending in the shard, invisible to OffsetFetch, until the
// transaction coordinator writes the COMMIT marker (then they become the
// group's committed offsets) or the ABORT marker (then they are dropped).
// Replay does the same from the log, so pending offsets of a transaction
// still open at a crash survive it.

import (
	"context"
	"encoding/binary"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/stromhq/strom/broker/group"
	"github.com/stromhq/strom/storage"
)

// txnOffsetSet is one producer's pending offsets: group -> partition ->
// offset.
type txnOffsetSet map[string]map[group.TopicPartition]group.Offset

func (s txnOffsetSet) add(g string, tp group.TopicPartition, o group.Offset) {
	if s[g] == nil {
		s[g] = map[group.TopicPartition]group.Offset{}
	}
	s[g][tp] = o
}

// markerIsCommit reports whether a control batch is a COMMIT marker; ok is
// false for a batch without a readable marker key.
func markerIsCommit(h storage.BatchHeader, batch []byte) (commit, ok bool) {
	if h.Compression() != 0 || len(batch) < batchHeaderSize {
		return false, false
	}
	found := false
	_, err := parseRecords(batch[batchHeaderSize:], func(i int, r recordView) error {
		if i == 0 && len(r.key) >= 4 {
			commit = binary.BigEndian.Uint16(r.key[2:]) == 1
			found = true
		}
		return nil
	})
	return commit, err == nil && found
}

// replayMarker applies a control batch met during load: the pending
// offsets of its producer become committed or vanish.
func replayMarker(h storage.BatchHeader, batch []byte, pending map[int64]map[string]map[group.TopicPartition]*group.Offset, offsets map[string]map[group.TopicPartition]*group.Offset) {
	commit, ok := markerIsCommit(h, batch)
	if !ok {
		return
	}
	if commit {
		for g, os := range pending[h.ProducerID] {
			if offsets[g] == nil {
				offsets[g] = map[group.TopicPartition]*group.Offset{}
			}
			for tp, o := range os {
				offsets[g][tp] = o
			}
		}
	}
	delete(pending, h.ProducerID)
}

// txnBatch encodes recs as a transactional batch of producer pid at epoch.
func txnBatch(recs []record, ts, pid int64, epoch int16) []byte {
	b := buildBatch(recs, ts)
	be := binary.BigEndian
	be.PutUint16(b[attributesPos:], be.Uint16(b[attributesPos:])|0x10)
	be.PutUint64(b[43:], uint64(pid))
	be.PutUint16(b[51:], uint16(epoch))
	setBatchCRC(b)
	return b
}

// txnMarker writes a transaction marker into __consumer_offsets partition
// idx and applies it to the shard's pending offsets, then waits until the
// marker is durable. coordEpoch is the transaction coordinator's epoch,
// written into the marker.
func (c *coordinator) txnMarker(ctx context.Context, idx int32, pid int64, epoch int16, commit bool, coordEpoch int32) *kerr.Error {
	t, ok := c.b.node.State().Topics[offsetsTopic]
	if !ok || int(idx) >= len(t.Partitions) {
		return nil
	}
	sh, e := c.shardAt(t, idx)
	if e != nil {
		return e
	}
	now := time.Now()
	sh.mu.Lock()
	w, err := appendMarker(sh.p, controlBatch(pid, epoch, commit, coordEpoch, now.UnixMilli()), pid, epoch, coordEpoch)
	if e := markerErr(err); e != nil {
		sh.mu.Unlock()
		return e
	}
	if err != nil {
		sh.mu.Unlock()
		c.b.log.Error("write transaction marker", "topic", offsetsTopic, "partition", idx, "err", err)
		return storageErr(err)
	}
	if commit {
		st := c.b.node.State()
		for id, os := range sh.txnOffsets[pid] {
			g := c.getOrCreate(sh, id, true, now)
			for tp, o := range os {
				g.Commit(tp, o)
				// A topic deleted (and perhaps created again) while the
				// offset was pending: the tick that purged it could not see
				// the pending offset, so the next one must.
				if t, ok := st.Topics[tp.Topic]; !ok || t.ID != o.TopicID {
					sh.purgeOnTick = true
				}
			}
		}
	}
	delete(sh.txnOffsets, pid)
	sh.mu.Unlock()
	return sh.waitDurable(ctx, w)
}

// hasPendingTxnOffset reports whether an open transaction committed an
// offset for g's partition tp. sh.mu must be held.
func (sh *shard) hasPendingTxnOffset(g string, tp group.TopicPartition) bool {
	for _, set := range sh.txnOffsets {
		if _, ok := set[g][tp]; ok {
			return true
		}
	}
	return false
}

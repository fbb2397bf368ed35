package broker

// ListOffsets, versions 0-11.
//
// Special timestamps: -1 latest (the high watermark, or the last stable
// offset under read_committed), -2 earliest (log start), -3 the
// record with the largest timestamp (v7+), -4 earliest local (v8+, equal to
// earliest: no tiered storage), -5 latest tiered (v9+) and -6 earliest
// pending upload (v11+) answer offset -1 as Kafka does without tiered
// storage. A real timestamp finds the first batch whose max timestamp is >= it
// via the time index and is refined to the exact record, below the high
// watermark. v4+ checks current_leader_epoch and returns the leader epoch of
// the answer. Duplicate partitions are INVALID_REQUEST (v1+).
//
// Differences from Kafka: v0 (OldStyleOffsets, dropped by Kafka 4) answers at
// most one offset (the one v1 would), not the list of segment base offsets.

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/storage"
)

func init() { register(&kmsg.ListOffsetsRequest{}, 0, 11, (*Broker).handleListOffsets) }

func (b *Broker) handleListOffsets(rq *request, req *kmsg.ListOffsetsRequest) reply {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	st := b.node.State()
	for _, rt := range req.Topics {
		ot := kmsg.NewListOffsetsResponseTopic()
		ot.Topic = rt.Topic
		seen := map[int32]int{}
		for _, rp := range rt.Partitions {
			seen[rp.Partition]++
		}
		denied := !b.authorized(rq, opDescribe, resTopic, rt.Topic)
		for _, rp := range rt.Partitions {
			op := kmsg.NewListOffsetsResponseTopicPartition()
			op.Partition = rp.Partition
			op.Timestamp, op.Offset, op.LeaderEpoch = -1, -1, -1
			if denied {
				op.ErrorCode = kerr.TopicAuthorizationFailed.Code
				ot.Partitions = append(ot.Partitions, op)
				continue
			}
			if seen[rp.Partition] > 1 && req.Version >= 1 {
				op.ErrorCode = kerr.InvalidRequest.Code
				ot.Partitions = append(ot.Partitions, op)
				continue
			}
			p, e := b.lookupPartition(st, rt.Topic, rp.Partition)
			if e == nil && req.Version >= 4 {
				e = checkLeaderEpoch(rp.CurrentLeaderEpoch, p.leaderEpoch.Load())
			}
			if e == nil {
				var err error
				op.Timestamp, op.Offset, op.LeaderEpoch, err = b.offsetFor(p, rp.Timestamp, req.IsolationLevel == 1)
				if req.ReplicaID >= 0 && rp.Timestamp == -1 && err == nil {
					// A follower repairing its fetch offset is told the log
					// end, as Kafka does for replicas.
					op.Offset = p.log.EndOffset()
				}
				if err != nil {
					b.log.Warn("list offsets", "topic", p.topic, "partition", p.index, "timestamp", rp.Timestamp, "err", err)
					e = storageErr(err)
				}
			}
			if e != nil {
				op.ErrorCode = e.Code
			} else if req.Version == 0 {
				if op.Offset >= 0 && rp.MaxNumOffsets > 0 {
					op.OldStyleOffsets = []int64{op.Offset}
				} else {
					op.OldStyleOffsets = []int64{}
				}
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return now(resp)
}

// offsetFor answers one ListOffsets query: timestamp, offset and leader epoch
// (-1s when nothing qualifies).
//
// Under read_committed the latest offset (and the bound of every lookup) is
// the last stable offset, as in Kafka.
func (b *Broker) offsetFor(p *partition, ts int64, readCommitted bool) (int64, int64, int32, error) {
	lg := p.log
	hw := lg.HighWatermark()
	if readCommitted {
		hw = lastStable(lg)
	}
	switch ts {
	case -1:
		return -1, hw, lg.LatestEpoch(), nil
	case -2, -4:
		start := lg.LogStartOffset()
		epoch := int32(-1)
		if batch, err := batchAt(lg, start, lg.EndOffset()); err == nil && batch != nil {
			if h, err := storage.ParseBatchHeader(batch); err == nil {
				epoch = h.PartitionLeaderEpoch
			}
		}
		return -1, start, epoch, nil
	case -5, -6:
		return -1, -1, -1, nil
	case -3:
		maxTS, base, err := lg.MaxTimestamp()
		if err != nil || base < 0 || base >= hw {
			return -1, -1, -1, err
		}
		batch, err := batchAt(lg, base, hw)
		if err != nil || batch == nil {
			return -1, -1, -1, err
		}
		off, rts, epoch, err := findRecord(batch, func(t int64) bool { return t == maxTS })
		if err != nil {
			return -1, -1, -1, err
		}
		return rts, off, epoch, nil
	}
	if ts < 0 {
		return -1, -1, -1, nil
	}
	base, batch, found, err := lg.OffsetForTimestamp(ts)
	if err != nil || !found {
		return -1, -1, -1, err
	}
	_ = base
	off, rts, epoch, err := findRecord(batch, func(t int64) bool { return t >= ts })
	if err != nil {
		return -1, -1, -1, err
	}
	if off < 0 || off >= hw {
		return -1, -1, -1, nil
	}
	return rts, off, epoch, nil
}

// batchAt returns the bytes of the batch holding offset (nil if none below
// upTo).
func batchAt(lg *storage.Log, offset, upTo int64) ([]byte, error) {
	sl, err := lg.Read(offset, 1, upTo)
	if err != nil {
		return nil, err
	}
	defer sl.Release()
	if sl.Len() == 0 {
		return nil, nil
	}
	data, err := sl.Bytes()
	if err != nil {
		return nil, err
	}
	var first []byte
	_ = storage.SplitBatches(data, func(_ storage.BatchHeader, batch []byte) bool {
		first = batch
		return false
	})
	return first, nil
}

// findRecord returns the offset, timestamp and batch leader epoch of the first
// record of batch whose timestamp satisfies match (offset -1 if none). In a
// LogAppendTime batch every record carries the batch max timestamp.
func findRecord(batch []byte, match func(int64) bool) (int64, int64, int32, error) {
	h, err := storage.ParseBatchHeader(batch)
	if err != nil {
		return -1, -1, -1, err
	}
	if h.TimestampType() == 1 {
		if match(h.MaxTimestamp) {
			return h.BaseOffset, h.MaxTimestamp, h.PartitionLeaderEpoch, nil
		}
		return -1, -1, -1, nil
	}
	raw, err := storage.Decompress(h.Compression(), batch[batchHeaderSize:h.Size()])
	if err != nil {
		return -1, -1, -1, fmt.Errorf("decompress batch at %d: %w", h.BaseOffset, err)
	}
	off, ts := int64(-1), int64(-1)
	errFound := fmt.Errorf("found")
	_, err = parseRecords(raw, func(_ int, r recordView) error {
		t := h.BaseTimestamp + r.timestampDelta
		if match(t) {
			off, ts = h.BaseOffset+int64(r.offsetDelta), t
			return errFound
		}
		return nil
	})
	if err != nil && err != errFound {
		return -1, -1, -1, err
	}
	return off, ts, h.PartitionLeaderEpoch, nil
}

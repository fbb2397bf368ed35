package replicate

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// partitionReader reads one partition's range with plain Fetch requests to its leader. Unlike a kgo
// consumer it reports the exact next offset after every fetch, past control records, aborted records and
// compacted-away offsets, so a reader knows it reached an end offset even when no record sits below it.
type partitionReader struct {
	cl        *kgo.Client
	topic     string
	topicID   [16]byte
	partition int32
	leader    int32
}

// read calls fn for every committed data record in [from, to) in offset order and returns the position it
// reached (>= to on success). Control records are not passed to fn.
func (r partitionReader) read(ctx context.Context, from, to int64, fn func(*kgo.Record) error) (int64, error) {
	off := from
	for off < to {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID = -1
		req.MaxWaitMillis = 200
		req.MinBytes = 1
		req.MaxBytes = 32 << 20
		req.IsolationLevel = 1
		req.SessionEpoch = -1
		t := kmsg.NewFetchRequestTopic()
		t.Topic = r.topic
		t.TopicID = r.topicID
		p := kmsg.NewFetchRequestTopicPartition()
		p.Partition = r.partition
		p.FetchOffset = off
		p.PartitionMaxBytes = 16 << 20
		p.CurrentLeaderEpoch = -1
		p.LastFetchedEpoch = -1
		p.LogStartOffset = -1
		t.Partitions = append(t.Partitions, p)
		req.Topics = append(req.Topics, t)
		resp, err := req.RequestWith(ctx, r.cl.Broker(int(r.leader)))
		if err != nil {
			return off, fmt.Errorf("fetch %s/%d at %d: %w", r.topic, r.partition, off, err)
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return off, fmt.Errorf("fetch %s/%d at %d: %w", r.topic, r.partition, off, err)
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			return off, fmt.Errorf("fetch %s/%d at %d: response with %d topics", r.topic, r.partition, off, len(resp.Topics))
		}
		rp := &resp.Topics[0].Partitions[0]
		if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
			return off, fmt.Errorf("fetch %s/%d at %d: %w", r.topic, r.partition, off, err)
		}
		fp, next := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
			Offset:         off,
			IsolationLevel: kgo.ReadCommitted(),
			Topic:          r.topic,
			Partition:      r.partition,
		}, rp, kgo.DefaultDecompressor(), nil)
		if fp.Err != nil {
			return off, fmt.Errorf("fetch %s/%d at %d: %w", r.topic, r.partition, off, fp.Err)
		}
		for _, rec := range fp.Records {
			if rec.Offset >= to {
				return to, nil
			}
			if err := fn(rec); err != nil {
				return rec.Offset, err
			}
		}
		if next <= off {
			// Nothing beyond off is readable yet: the range ends at the last stable offset.
			if rp.LastStableOffset >= 0 && rp.LastStableOffset <= off || rp.HighWatermark <= off {
				return off, nil
			}
			continue
		}
		off = next
	}
	return off, nil
}

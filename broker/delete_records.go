package broker

// DeleteRecords, versions 0-2.
//
// Advances a partition's log start offset (storage.Log.DeleteRecordsBefore,
// checkpointed before segments are removed). Offset -1 means the high
// watermark; an offset above the high watermark or below -1 is
// OFFSET_OUT_OF_RANGE; one at or below the current log start changes nothing.
// As in Kafka, a replicated partition is answered once its low watermark,
// the lowest log start offset among the leader and its followers on live
// brokers, has reached the new log start (followers learn it from their
// fetches and report theirs back), so records deleted on the leader do not
// come back with a failover to a follower; past the request's timeout the
// partition is answered REQUEST_TIMED_OUT with the low watermark reached so
// far. With one replica the answer is immediate. The answer's low watermark
// is that low watermark. With the authorizer on, deleting needs DELETE on
// the topic (TOPIC_AUTHORIZATION_FAILED), as in Kafka.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(&kmsg.DeleteRecordsRequest{}, 0, 2, (*Broker).handleDeleteRecords) }

func (b *Broker) handleDeleteRecords(rq *request, req *kmsg.DeleteRecordsRequest) reply {
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	st := b.node.State()
	// waiting are the replicated partitions whose answer waits for the low
	// watermark: indexes into resp, the partition and the offset it needs.
	type waiting struct {
		t, p int
		part *partition
		want int64
	}
	var waits []waiting
	for _, rt := range req.Topics {
		ot := kmsg.NewDeleteRecordsResponseTopic()
		ot.Topic = rt.Topic
		denied := !b.authorized(rq, opDelete, resTopic, rt.Topic)
		for _, rp := range rt.Partitions {
			op := kmsg.NewDeleteRecordsResponseTopicPartition()
			op.Partition, op.LowWatermark = rp.Partition, -1
			if denied {
				op.ErrorCode = kerr.TopicAuthorizationFailed.Code
				ot.Partitions = append(ot.Partitions, op)
				continue
			}
			p, e := b.lookupPartition(st, rt.Topic, rp.Partition)
			if e == nil {
				op.LowWatermark, e = b.deleteRecords(p, rp.Offset)
			}
			if e != nil {
				op.ErrorCode = e.Code
			} else if p.replicated() {
				waits = append(waits, waiting{len(resp.Topics), len(ot.Partitions), p, op.LowWatermark})
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	if len(waits) == 0 {
		return now(resp)
	}
	timeout := time.Duration(max(req.TimeoutMillis, 0)) * time.Millisecond
	return reply{wait: func(ctx context.Context) kmsg.Response {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		for _, w := range waits {
			out := &resp.Topics[w.t].Partitions[w.p]
			low, e := w.part.waitLowWatermark(ctx, b, w.want)
			out.LowWatermark = low
			if e != nil {
				out.ErrorCode = e.Code
			}
		}
		return resp
	}}
}

// deleteRecords moves the log start of p to offset and returns the new log
// start offset.
func (b *Broker) deleteRecords(p *partition, offset int64) (int64, *kerr.Error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	hw := p.log.HighWatermark()
	if offset == -1 {
		offset = hw
	}
	if offset < 0 || offset > hw {
		return -1, kerr.OffsetOutOfRange
	}
	if err := p.log.DeleteRecordsBefore(offset); err != nil {
		b.log.Warn("delete records", "topic", p.topic, "partition", p.index, "offset", offset, "err", err)
		return -1, storageErr(err)
	}
	p.checkInvariants()
	return p.log.LogStartOffset(), nil
}

package broker

// OffsetForLeaderEpoch, versions 0-4.
//
// Answers from the partition's leader-epoch cache with Kafka's semantics
// (KIP-101/279, storage.Log.EndOffsetForEpoch): for the latest epoch the log
// end offset, for an older one the start offset of the next higher epoch with
// the largest known epoch <= the requested one, and epoch/offset -1 when the
// requested epoch is unknown. current_leader_epoch (v2+) is checked (FENCED /
// UNKNOWN_LEADER_EPOCH). Consumers (replica id -1) and followers get the same
// answer: with one replica the log end is the high watermark.

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(&kmsg.OffsetForLeaderEpochRequest{}, 0, 4, (*Broker).handleOffsetForLeaderEpoch)
}

func (b *Broker) handleOffsetForLeaderEpoch(rq *request, req *kmsg.OffsetForLeaderEpochRequest) reply {
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	st := b.node.State()
	for _, rt := range req.Topics {
		ot := kmsg.NewOffsetForLeaderEpochResponseTopic()
		ot.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			op := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			op.Partition, op.LeaderEpoch, op.EndOffset = rp.Partition, -1, -1
			p, e := b.lookupPartition(st, rt.Topic, rp.Partition)
			if e == nil && req.Version >= 2 {
				e = checkLeaderEpoch(rp.CurrentLeaderEpoch, p.leaderEpoch.Load())
			}
			if e != nil {
				op.ErrorCode = e.Code
			} else {
				op.LeaderEpoch, op.EndOffset = p.log.EndOffsetForEpoch(rp.LeaderEpoch)
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return now(resp)
}

package broker

// OffsetForLeaderEpoch, versions 0-4.
//
// Answers from the partition's leader-epoch cache with Kafka's semantics
// (KIP-101/279, storage.Log.EndOffsetForEpoch): for the latest epoch the log
// end offset, for an older one the start offset of the next higher epoch with
// the largest known epoch <= the requested one, and epoch/offset -1 when the
// requested epoch is unknown. current_leader_epoch (v2+) is checked (FENCED /
// UNKNOWN_LEADER_EPOCH). Consumers (replica id -1) and followers get the same
// answer: with one replica the log end is the high watermark. With the
// authorizer on, followers need CLUSTER_ACTION on the cluster and consumers
// DESCRIBE on the topic, as in Kafka.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(&kmsg.OffsetForLeaderEpochRequest{}, 0, 4, (*Broker).handleOffsetForLeaderEpoch)
}

func (b *Broker) handleOffsetForLeaderEpoch(rq *request, req *kmsg.OffsetForLeaderEpochRequest) reply {
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	st := b.node.State()
	// A follower (v3+ replica id >= 0) needs CLUSTER_ACTION for the whole
	// request; a consumer DESCRIBE on each topic.
	clusterDenied := req.Version >= 3 && req.ReplicaID >= 0 && !b.authorizedCluster(rq, opClusterAction)
	for _, rt := range req.Topics {
		ot := kmsg.NewOffsetForLeaderEpochResponseTopic()
		ot.Topic = rt.Topic
		var denied *kerr.Error
		switch {
		case clusterDenied:
			denied = kerr.ClusterAuthorizationFailed
		case !b.authorized(rq, opDescribe, resTopic, rt.Topic):
			denied = kerr.TopicAuthorizationFailed
		}
		for _, rp := range rt.Partitions {
			op := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			op.Partition, op.LeaderEpoch, op.EndOffset = rp.Partition, -1, -1
			if denied != nil {
				op.ErrorCode = denied.Code
				ot.Partitions = append(ot.Partitions, op)
				continue
			}
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

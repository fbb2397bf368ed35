package broker

// DescribeProducers, version 0 (KIP-664).
//
// Lists the producer state of each partition from its log (storage.Log
// Producers): id, epoch, last sequence, last timestamp and the first offset
// of an open transaction (always -1 until transactions exist). The
// coordinator epoch is -1. With the authorizer on, partitions of topics the
// client may not READ are TOPIC_AUTHORIZATION_FAILED, as in Kafka.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(&kmsg.DescribeProducersRequest{}, 0, 0, (*Broker).handleDescribeProducers) }

func (b *Broker) handleDescribeProducers(rq *request, req *kmsg.DescribeProducersRequest) reply {
	resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
	st := b.node.State()
	for _, rt := range req.Topics {
		ot := kmsg.NewDescribeProducersResponseTopic()
		ot.Topic = rt.Topic
		denied := !b.authorized(rq, opRead, resTopic, rt.Topic)
		for _, part := range rt.Partitions {
			op := kmsg.NewDescribeProducersResponseTopicPartition()
			op.Partition = part
			if denied {
				op.ErrorCode = kerr.TopicAuthorizationFailed.Code
				ot.Partitions = append(ot.Partitions, op)
				continue
			}
			p, e := b.lookupPartition(st, rt.Topic, part)
			if e != nil {
				op.ErrorCode = e.Code
				ot.Partitions = append(ot.Partitions, op)
				continue
			}
			for _, pe := range p.log.Producers() {
				ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
				ap.ProducerID, ap.ProducerEpoch = pe.ProducerID, int32(pe.Epoch)
				ap.LastSequence = -1
				if n := len(pe.Batches); n > 0 {
					ap.LastSequence = pe.Batches[n-1].LastSeq
				}
				ap.LastTimestamp, ap.CoordinatorEpoch, ap.CurrentTxnStartOffset = pe.LastTimestamp, pe.CoordinatorEpoch, pe.CurrentTxnFirstOffset
				op.ActiveProducers = append(op.ActiveProducers, ap)
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return now(resp)
}

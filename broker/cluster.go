package broker

// DescribeCluster 0-2 and DescribeTopicPartitions 0.
//
// DescribeCluster lists the registered brokers (v2 can include fenced ones),
// the cluster id and the controller (the raft leader). Endpoint type 2
// (controllers, KIP-919, what --bootstrap-controller clients send) lists
// the raft voters with the endpoint of the listener the request came in on
// (Strom's controllers are its brokers, so any node answers it, where Kafka's
// brokers refuse it); other endpoint types are UNSUPPORTED_ENDPOINT_TYPE.
// DescribeTopicPartitions (KIP-966) pages
// through topics sorted by name with a cursor and a partition limit (at most
// 2000 per response, Kafka's default max.request.partition.size.limit);
// eligible-leader-replica fields are empty (no ELR); OfflineReplicas lists
// replicas on fenced or unregistered brokers.
//
// ACLs as in Kafka: DescribeCluster itself needs no permission; the cluster
// authorized operations (when asked for) are 0 without DESCRIBE on the
// cluster. DescribeTopicPartitions lists only topics the client may
// DESCRIBE, answers named ones it may not with TOPIC_AUTHORIZATION_FAILED,
// and fills each topic's authorized operations.

import (
	"slices"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/raft"
)

func init() {
	register(&kmsg.DescribeClusterRequest{}, 0, 2, (*Broker).handleDescribeCluster)
	register(&kmsg.DescribeTopicPartitionsRequest{}, 0, 0, (*Broker).handleDescribeTopicPartitions)
}

func (b *Broker) handleDescribeCluster(rq *request, req *kmsg.DescribeClusterRequest) reply {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	st := b.node.State()
	resp.EndpointType = 1
	controllers := req.Version >= 1 && req.EndpointType == 2
	if req.Version >= 1 && req.EndpointType != 1 && !controllers {
		resp.EndpointType = req.EndpointType
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		resp.ErrorMessage = kmsg.StringPtr("The endpoint type of this request is not supported by brokers.")
		return now(resp)
	}
	resp.ClusterID = st.ClusterID
	resp.ControllerID = st.ControllerID
	if req.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = 0
		if b.authorizedCluster(rq, opDescribe) {
			resp.ClusterAuthorizedOperations = b.authorizedOps(rq, resCluster, clusterResource)
		}
	}
	if controllers {
		resp.EndpointType = 2
		return now(b.describeControllers(rq, st, resp))
	}
	for _, br := range st.SortedBrokers() {
		if br.Fenced && !req.IncludeFencedBrokers {
			continue
		}
		host, port, ok := brokerEndpoint(br, rq.c.listenerName())
		if !ok {
			continue
		}
		db := kmsg.NewDescribeClusterResponseBroker()
		db.NodeID, db.Host, db.Port, db.IsFenced = br.ID, host, port, br.Fenced
		if br.Rack != "" {
			db.Rack = kmsg.StringPtr(br.Rack)
		}
		resp.Brokers = append(resp.Brokers, db)
	}
	return now(resp)
}

// describeControllers fills resp's broker list with the raft voters, as
// Kafka's controllers answer endpoint type 2: each voter at its endpoint for
// rq's listener, never fenced. A voter without a registration (not yet
// registered) or without that listener is left out.
func (b *Broker) describeControllers(rq *request, st *raft.State, resp *kmsg.DescribeClusterResponse) *kmsg.DescribeClusterResponse {
	servers, err := b.node.Servers()
	if err != nil {
		resp.ErrorCode = kerr.UnknownServerError.Code
		resp.ErrorMessage = kmsg.StringPtr(err.Error())
		return resp
	}
	slices.SortFunc(servers, func(a, b raft.Server) int { return int(a.ID) - int(b.ID) })
	for _, s := range servers {
		br, ok := st.Brokers[s.ID]
		if !s.Voter || !ok {
			continue
		}
		host, port, ok := brokerEndpoint(br, rq.c.listenerName())
		if !ok {
			continue
		}
		db := kmsg.NewDescribeClusterResponseBroker()
		db.NodeID, db.Host, db.Port = br.ID, host, port
		if br.Rack != "" {
			db.Rack = kmsg.StringPtr(br.Rack)
		}
		resp.Brokers = append(resp.Brokers, db)
	}
	return resp
}

// maxDescribePartitions caps partitions per DescribeTopicPartitions response.
const maxDescribePartitions = 2000

func (b *Broker) handleDescribeTopicPartitions(rq *request, req *kmsg.DescribeTopicPartitionsRequest) reply {
	resp := req.ResponseKind().(*kmsg.DescribeTopicPartitionsResponse)
	st := b.node.State()
	var names []string
	if len(req.Topics) == 0 {
		names = st.SortedTopicNames()
	} else {
		for _, t := range req.Topics {
			names = append(names, t.Topic)
		}
		sort.Strings(names)
		names = slices.Compact(names)
	}
	limit := int(req.ResponsePartitionLimit)
	if limit <= 0 || limit > maxDescribePartitions {
		limit = maxDescribePartitions
	}
	startPart := int32(0)
	if c := req.Cursor; c != nil {
		i := sort.SearchStrings(names, c.Topic)
		names = names[i:]
		if len(names) > 0 && names[0] == c.Topic {
			startPart = c.Partition
		}
	}
	used := 0
	listAll := len(req.Topics) == 0
	// Named topics the client may not DESCRIBE go after the others, as
	// Kafka appends them, without revealing whether they exist.
	var denied []kmsg.DescribeTopicPartitionsResponseTopic
	for ni, name := range names {
		ot := kmsg.NewDescribeTopicPartitionsResponseTopic()
		ot.Topic = kmsg.StringPtr(name)
		if !b.authorized(rq, opDescribe, resTopic, name) {
			if !listAll {
				ot.ErrorCode = kerr.TopicAuthorizationFailed.Code
				denied = append(denied, ot)
			}
			continue
		}
		ot.AuthorizedOperations = b.authorizedOps(rq, resTopic, name)
		t, ok := st.Topics[name]
		if !ok {
			ot.ErrorCode = kerr.UnknownTopicOrPartition.Code
			if validateTopicName(name) != nil {
				ot.ErrorCode = kerr.InvalidTopicException.Code
			}
			resp.Topics = append(resp.Topics, ot)
			continue
		}
		ot.TopicID, ot.IsInternal = t.ID, t.Internal
		first := int32(0)
		if ni == 0 {
			first = startPart
		}
		for i := first; int(i) < len(t.Partitions); i++ {
			if used == limit {
				resp.NextCursor = &kmsg.DescribeTopicPartitionsResponseNextCursor{Topic: name, Partition: i}
				break
			}
			p := t.Partitions[i]
			op := kmsg.NewDescribeTopicPartitionsResponseTopicPartition()
			op.Partition, op.LeaderID, op.LeaderEpoch = p.Index, p.Leader, p.LeaderEpoch
			op.Replicas, op.ISR = slices.Clone(p.Replicas), slices.Clone(p.ISR)
			op.EligibleLeaderReplicas, op.LastKnownELR = []int32{}, []int32{}
			op.OfflineReplicas = offlineReplicas(st, p.Replicas)
			ot.Partitions = append(ot.Partitions, op)
			used++
		}
		resp.Topics = append(resp.Topics, ot)
		if resp.NextCursor != nil {
			break
		}
	}
	resp.Topics = append(resp.Topics, denied...)
	return now(resp)
}

// offlineReplicas returns the members of replicas whose broker is fenced or
// not registered (never nil: Kafka sends an empty array).
func offlineReplicas(st *raft.State, replicas []int32) []int32 {
	out := []int32{}
	for _, r := range replicas {
		if b, ok := st.Brokers[r]; !ok || b.Fenced {
			out = append(out, r)
		}
	}
	return out
}

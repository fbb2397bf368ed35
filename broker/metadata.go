package broker

// Metadata, versions 0-13.
//
// Brokers, topics, topic IDs and partitions come from the raft state. Unknown
// topics requested by name are auto-created when both the broker
// (--auto-create-topics) and the request (v4+ AllowAutoTopicCreation; always
// for v0-3) allow it. Differences from Kafka:
//   - an auto-created topic is returned ready (leader, ISR) in the same
//     response; Kafka answers LEADER_NOT_AVAILABLE first and the client
//     retries.
//   - a broker other than the controller that lacks a topic the request
//     names waits up to metadataCatchUp for its state to catch up before it
//     answers UNKNOWN_TOPIC_OR_PARTITION, so a topic just created elsewhere
//     is found (Kafka brokers answer from their cache as it is).
//
// With the authorizer on, as in Kafka: listing all topics omits those the
// client may not DESCRIBE; a topic requested by name or id without DESCRIBE
// is TOPIC_AUTHORIZATION_FAILED whether it exists or not; auto-creation
// needs CREATE on the cluster or on the topic (TOPIC_AUTHORIZATION_FAILED
// otherwise). Topic and cluster authorized operations are filled when the
// request asks for them (v8+ and v8-10).
//
// OfflineReplicas (v5+) lists the replicas on fenced or unregistered
// brokers, as Kafka's KRaft metadata cache does; while a partition is being
// reassigned Replicas is the target followed by the replicas being removed.

import (
	"context"
	"slices"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/raft"
)

func init() { register(&kmsg.MetadataRequest{}, 0, 13, (*Broker).handleMetadata) }

func (b *Broker) handleMetadata(rq *request, req *kmsg.MetadataRequest) reply {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	st := b.catchUpTopics(req, b.node.State())
	autoCreate := b.cfg.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)

	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	if all {
		names := make([]string, 0, len(st.Topics))
		for name := range st.Topics {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			if !b.authorized(rq, opDescribe, resTopic, name) {
				continue
			}
			resp.Topics = append(resp.Topics, b.topicMetadata(st, st.Topics[name], rq.c.listenerName()))
		}
	} else {
		for _, rt := range req.Topics {
			if rt.Topic == nil {
				t, ok := st.TopicsByID[rt.TopicID]
				if !ok {
					mt := kmsg.NewMetadataResponseTopic()
					mt.TopicID = rt.TopicID
					mt.ErrorCode = kerr.UnknownTopicID.Code
					resp.Topics = append(resp.Topics, mt)
					continue
				}
				if !b.authorized(rq, opDescribe, resTopic, t.Name) {
					// Topic ids are not secret: Kafka answers with the id.
					mt := kmsg.NewMetadataResponseTopic()
					mt.TopicID = rt.TopicID
					mt.ErrorCode = kerr.TopicAuthorizationFailed.Code
					resp.Topics = append(resp.Topics, mt)
					continue
				}
				resp.Topics = append(resp.Topics, b.topicMetadata(st, t, rq.c.listenerName()))
				continue
			}
			name := *rt.Topic
			if !b.authorized(rq, opDescribe, resTopic, name) {
				mt := kmsg.NewMetadataResponseTopic()
				mt.Topic = kmsg.StringPtr(name)
				mt.ErrorCode = kerr.TopicAuthorizationFailed.Code
				resp.Topics = append(resp.Topics, mt)
				continue
			}
			t, ok := st.Topics[name]
			if !ok && autoCreate && validateTopicName(name) == nil &&
				!b.authorizedCluster(rq, opCreate) && !b.authorized(rq, opCreate, resTopic, name) {
				mt := kmsg.NewMetadataResponseTopic()
				mt.Topic = kmsg.StringPtr(name)
				mt.ErrorCode = kerr.TopicAuthorizationFailed.Code
				resp.Topics = append(resp.Topics, mt)
				continue
			}
			if !ok && autoCreate && validateTopicName(name) == nil {
				created, kerrv, _ := b.createTopic(context.Background(), name, -1, -1, nil, nil, false)
				switch kerrv {
				case nil:
					t, ok = created, true
				case kerr.TopicAlreadyExists:
					// Created concurrently by another request (kafka-go's
					// reader and writer race this way); topicMetadata
					// opens its partitions before naming this broker.
					st = b.node.State()
					t, ok = st.Topics[name]
				}
			}
			if !ok {
				mt := kmsg.NewMetadataResponseTopic()
				mt.Topic = kmsg.StringPtr(name)
				mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
				if validateTopicName(name) != nil {
					mt.ErrorCode = kerr.InvalidTopicException.Code
				}
				resp.Topics = append(resp.Topics, mt)
				continue
			}
			resp.Topics = append(resp.Topics, b.topicMetadata(st, t, rq.c.listenerName()))
		}
	}
	if req.IncludeTopicAuthorizedOperations {
		for i := range resp.Topics {
			if mt := &resp.Topics[i]; mt.ErrorCode != kerr.TopicAuthorizationFailed.Code && mt.Topic != nil {
				mt.AuthorizedOperations = b.authorizedOps(rq, resTopic, *mt.Topic)
			}
		}
	}
	if req.IncludeClusterAuthorizedOperations {
		resp.AuthorizedOperations = 0
		if b.authorizedCluster(rq, opDescribe) {
			resp.AuthorizedOperations = b.authorizedOps(rq, resCluster, clusterResource)
		}
	}
	resp.Brokers = brokersOf(st, rq.c.listenerName())
	resp.ClusterID = kmsg.StringPtr(st.ClusterID)
	resp.ControllerID = st.ControllerID
	return now(resp)
}

// metadataCatchUp bounds how long a broker that is not the controller waits
// for a topic a Metadata request names but its state lacks. The controller
// answers CreateTopics once the topic is committed; the other nodes apply it
// when the raft leader next tells them the commit index, within its commit
// timeout (20 ms) and an apply: 1-24 ms measured on three local nodes, in
// which time every other broker answered UNKNOWN_TOPIC_OR_PARTITION. A
// client that created a topic and then asked another broker for it took
// that for an answer: franz-go then waits out its metadata min age (5 s)
// before it asks again, which stalled the first produce to a new topic.
const metadataCatchUp = 100 * time.Millisecond

// catchUpTopics returns st, or, when req names a topic (by name or id) st
// lacks and this node is not the raft leader, the state once it has them
// or metadataCatchUp has passed. A topic that does not exist costs
// followers that wait; the leader, whose state is the newest, answers at
// once.
func (b *Broker) catchUpTopics(req *kmsg.MetadataRequest, st *raft.State) *raft.State {
	missing := func(st *raft.State) bool {
		for _, rt := range req.Topics {
			if rt.Topic == nil {
				if _, ok := st.TopicsByID[rt.TopicID]; !ok {
					return true
				}
			} else if _, ok := st.Topics[*rt.Topic]; !ok && validateTopicName(*rt.Topic) == nil {
				return true
			}
		}
		return false
	}
	if !missing(st) || b.node.IsLeader() {
		return st
	}
	changed, cancel := b.node.Subscribe()
	defer cancel()
	deadline := time.NewTimer(metadataCatchUp)
	defer deadline.Stop()
	for {
		st = b.node.State() // after subscribing: no change is missed
		if !missing(st) {
			return st
		}
		select {
		case <-changed:
		case <-deadline.C:
			return b.node.State()
		case <-b.ctx.Done():
			return st
		}
	}
}

// brokersOf lists the registered brokers, unfenced ones only, by id, with
// their endpoints for listener (brokers without it are left out).
func brokersOf(st *raft.State, listener string) []kmsg.MetadataResponseBroker {
	var out []kmsg.MetadataResponseBroker
	for _, br := range st.Brokers {
		if br.Fenced {
			continue
		}
		host, port, ok := brokerEndpoint(br, listener)
		if !ok {
			continue
		}
		mb := kmsg.NewMetadataResponseBroker()
		mb.NodeID, mb.Host, mb.Port = br.ID, host, port
		if br.Rack != "" {
			mb.Rack = kmsg.StringPtr(br.Rack)
		}
		out = append(out, mb)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NodeID < out[j].NodeID })
	return out
}

// topicMetadata describes one topic of the raft state st to a client on
// listener: a partition whose leader has no endpoint for that listener is
// LEADER_NOT_AVAILABLE without a leader, as in Kafka. So is a partition this
// broker leads in st but has not opened yet (the raft state can run ahead of
// the partition manager: a topic another request just created): its
// partitions are reconciled first, so a leader named here takes writes.
func (b *Broker) topicMetadata(st *raft.State, t *raft.Topic, listener string) kmsg.MetadataResponseTopic {
	reconciled := false
	openHere := func(p raft.Partition) bool {
		lp := b.parts.get(t.Name, p.Index)
		return lp != nil && lp.topicID == t.ID
	}
	mt := kmsg.NewMetadataResponseTopic()
	mt.Topic = kmsg.StringPtr(t.Name)
	mt.TopicID = t.ID
	mt.IsInternal = t.Internal
	for _, p := range t.Partitions {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = p.Index
		mp.Leader = p.Leader
		mp.LeaderEpoch = p.LeaderEpoch
		mp.Replicas = slices.Clone(p.Replicas)
		mp.ISR = slices.Clone(p.ISR)
		mp.OfflineReplicas = offlineReplicas(st, p.Replicas)
		if br, ok := st.Brokers[p.Leader]; ok {
			if _, _, ok := brokerEndpoint(br, listener); !ok {
				mp.Leader = -1
			}
		}
		if p.Leader == b.cfg.NodeID && !openHere(p) {
			if !reconciled {
				b.parts.reconcile()
				reconciled = true
			}
			if !openHere(p) {
				mp.Leader = -1
			}
		}
		if mp.Leader < 0 {
			mp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}

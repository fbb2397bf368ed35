package broker

// The consumer group protocol of KIP-848: ConsumerGroupHeartbeat 0-1 (v1:
// client-generated member ids, regex subscriptions) and
// ConsumerGroupDescribe 0-1, with the server-side assignors "uniform"
// (default) and "range". The state machine is in broker/group (consumer.go).
//
// A group is classic or consumer, as in Kafka: a ConsumerGroupHeartbeat for a
// classic group with members gets GROUP_ID_NOT_FOUND, a JoinGroup for a
// consumer group with members INCONSISTENT_GROUP_PROTOCOL; an empty group of
// either type converts (its offsets stay). Members commit offsets with their
// member epoch (STALE_MEMBER_EPOCH when it is not current).
//
// Every change of a consumer group is written to __consumer_offsets as
// Kafka's records (group epoch, subscription metadata, members, target and
// current assignments; broker/group/records.go) before the heartbeat that
// caused it is answered, and a coordinator load rebuilds the group from
// them: after a restart members keep their epochs and assignments and go on
// heartbeating (their sessions restart at the load).
//
// Differences from Kafka: migration between protocols of a non-empty group
// (KIP-848 upgrade path) and rack-aware assignment are not implemented; the
// uniform assignor is sticky but not rack aware. The subscription metadata
// is kept in the ConsumerGroupPartitionMetadata record (Kafka before 4.1)
// rather than as a hash in the group record (KIP-1101).
//
// ACLs as in Kafka: a heartbeat needs READ on the group and DESCRIBE on every
// subscribed topic name (TOPIC_AUTHORIZATION_FAILED otherwise); describing
// needs DESCRIBE on the group and fills the authorized operations when asked.
// Not done: topics matched by a regex subscription are not filtered by the
// member's DESCRIBE rights, and ConsumerGroupDescribe does not fail groups
// whose assignments name topics the client may not describe.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/broker/group"
	"github.com/stromhq/strom/raft"
)

func init() {
	register(&kmsg.ConsumerGroupHeartbeatRequest{}, 0, 1, (*Broker).handleConsumerGroupHeartbeat)
	register(&kmsg.ConsumerGroupDescribeRequest{}, 0, 1, (*Broker).handleConsumerGroupDescribe)
}

// stateTopics is the group package's view of the raft metadata. As in
// Kafka, internal topics are assignable: a subscription (or a regex
// resolved here) that names __consumer_offsets gets its partitions; clients
// exclude internal topics on their side.
type stateTopics struct{ st *raft.State }

func (s stateTopics) Lookup(name string) (group.TopicInfo, bool) {
	t, ok := s.st.Topics[name]
	if !ok {
		return group.TopicInfo{}, false
	}
	return group.TopicInfo{Name: name, ID: t.ID, Partitions: int32(len(t.Partitions))}, true
}

func (s stateTopics) Names() []string {
	out := make([]string, 0, len(s.st.Topics))
	for n := range s.st.Topics {
		out = append(out, n)
	}
	return out
}

// consumerConfig is the KIP-848 coordinator's setting for groupID: the broker's, overridden by the
// group's configs (kafka-configs --entity-type groups).
func (b *Broker) consumerConfig(groupID string) group.ConsumerConfig {
	session, heartbeat := b.consumerConfigFor(b.node.State(), groupID)
	return group.ConsumerConfig{SessionTimeout: session, HeartbeatInterval: heartbeat}
}

func (b *Broker) handleConsumerGroupHeartbeat(rq *request, req *kmsg.ConsumerGroupHeartbeatRequest) reply {
	resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
	fail := func(e *kerr.Error, msg string) reply {
		resp.ErrorCode = e.Code
		if msg != "" {
			resp.ErrorMessage = kmsg.StringPtr(msg)
		}
		return now(resp)
	}
	if !b.authorized(rq, opRead, resGroup, req.Group) {
		return fail(kerr.GroupAuthorizationFailed, "")
	}
	for _, topic := range req.SubscribedTopicNames {
		if !b.authorized(rq, opDescribe, resTopic, topic) {
			return fail(kerr.TopicAuthorizationFailed, "")
		}
	}
	if req.Group == "" {
		return fail(kerr.InvalidGroupID, "GroupId can't be empty.")
	}
	sh, e := b.groups.shardFor(req.Group)
	if e != nil {
		return fail(e, "")
	}
	hb := group.ConsumerHeartbeat{
		MemberID: req.MemberID, MemberEpoch: req.MemberEpoch, InstanceID: req.InstanceID, RackID: req.RackID,
		ClientID: rq.clientID, ClientHost: clientHost(rq),
		RebalanceTimeout: time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond,
		SubscribedTopics: req.SubscribedTopicNames, SubscribedRegex: req.SubscribedTopicRegex,
		ServerAssignor: req.ServerAssignor,
	}
	if req.RebalanceTimeoutMillis < 0 {
		hb.RebalanceTimeout = -1
	}
	if req.Topics != nil {
		hb.Owned = group.Assignment{}
		for _, t := range req.Topics {
			hb.Owned[t.TopicID] = append(hb.Owned[t.TopicID], t.Partitions...)
		}
	}
	t := time.Now()
	topics := stateTopics{b.node.State()}
	sh.mu.Lock()
	g := b.groups.getOrCreate(sh, req.Group, req.MemberEpoch == group.JoinEpoch, t)
	if g == nil {
		sh.mu.Unlock()
		return fail(kerr.UnknownMemberID, "")
	}
	ccfg := b.consumerConfig(req.Group)
	r := g.ConsumerHeartbeat(t, ccfg, topics, hb, req.Version >= 1)
	syncTo, err := b.groups.finish(sh, t, nil, g)
	sh.mu.Unlock()
	if r.Err != nil {
		return fail(r.Err, r.ErrMessage)
	}
	if err != nil {
		return fail(appendFailed, "")
	}
	resp.MemberID = kmsg.StringPtr(r.MemberID)
	resp.MemberEpoch = r.Epoch
	resp.HeartbeatIntervalMillis = int32(ccfg.HeartbeatInterval / time.Millisecond)
	if r.Assignment != nil {
		a := kmsg.NewConsumerGroupHeartbeatResponseAssignment()
		for tid, ps := range r.Assignment {
			at := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
			at.TopicID, at.Partitions = tid, ps
			a.Topics = append(a.Topics, at)
		}
		resp.Assignment = &a
	}
	// The answer tells the member its epoch and assignment: it goes out
	// only once the records holding them are durable, so a restarted
	// coordinator never knows less than a member was told.
	return reply{wait: func(ctx context.Context) kmsg.Response {
		if e := sh.waitDurable(ctx, syncTo); e != nil {
			return fail(e, "").resp
		}
		return resp
	}}
}

// describeAssignment converts an assignment for ConsumerGroupDescribe,
// with topic names.
func describeAssignment(st *raft.State, a group.Assignment) kmsg.Assignment {
	out := kmsg.NewAssignment()
	for tid, ps := range a {
		tp := kmsg.NewAssignmentTopicPartition()
		tp.TopicID, tp.Partitions = tid, ps
		if t, ok := st.TopicsByID[tid]; ok {
			tp.Topic = t.Name
		}
		out.TopicPartitions = append(out.TopicPartitions, tp)
	}
	return out
}

func (b *Broker) handleConsumerGroupDescribe(rq *request, req *kmsg.ConsumerGroupDescribeRequest) reply {
	resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	st := b.node.State()
	for _, id := range req.Groups {
		rg := kmsg.NewConsumerGroupDescribeResponseGroup()
		rg.Group = id
		rg.AuthorizedOperations = -2147483648
		if !b.authorized(rq, opDescribe, resGroup, id) {
			rg.ErrorCode = kerr.GroupAuthorizationFailed.Code
			resp.Groups = append(resp.Groups, rg)
			continue
		}
		sh, e := b.groups.shardFor(id)
		if e != nil {
			rg.ErrorCode = e.Code
			resp.Groups = append(resp.Groups, rg)
			continue
		}
		sh.mu.Lock()
		g := sh.groups[id]
		var d group.ConsumerDescription
		ok := false
		if g != nil && g.State() != group.Dead {
			d, ok = g.DescribeConsumer()
		}
		sh.mu.Unlock()
		if !ok {
			rg.ErrorCode = kerr.GroupIDNotFound.Code
			msg := "Group " + id + " not found."
			if g != nil {
				msg = "Group " + id + " is not a consumer group."
			}
			rg.ErrorMessage = kmsg.StringPtr(msg)
			resp.Groups = append(resp.Groups, rg)
			continue
		}
		if req.IncludeAuthorizedOperations {
			// Only groups described without error carry them, as in Kafka.
			rg.AuthorizedOperations = b.authorizedOps(rq, resGroup, id)
		}
		rg.State, rg.Epoch, rg.AssignmentEpoch, rg.AssignorName = d.State, d.Epoch, d.AssignEpoch, d.Assignor
		for _, m := range d.Members {
			rm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
			rm.MemberID, rm.InstanceID, rm.RackID, rm.MemberEpoch = m.MemberID, m.InstanceID, m.RackID, m.Epoch
			rm.ClientID, rm.ClientHost, rm.SubscribedTopics = m.ClientID, m.ClientHost, m.SubscribedTopics
			if rm.SubscribedTopics == nil {
				rm.SubscribedTopics = []string{}
			}
			if m.SubscribedRegex != "" {
				rm.SubscribedTopicRegex = kmsg.StringPtr(m.SubscribedRegex)
			}
			rm.Assignment = describeAssignment(st, m.Assigned)
			rm.TargetAssignment = describeAssignment(st, m.Target)
			rm.MemberType = 1 // consumer protocol
			rg.Members = append(rg.Members, rm)
		}
		resp.Groups = append(resp.Groups, rg)
	}
	return now(resp)
}

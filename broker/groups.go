package broker

// Group membership APIs of the classic protocol:
// FindCoordinator 0-6 (batched keys v4+), JoinGroup 0-9, SyncGroup 0-5,
// Heartbeat 0-4, LeaveGroup 0-5 (batched members v3+), DescribeGroups 0-6,
// ListGroups 0-5 (state filter v4+, type filter v5+), DeleteGroups 0-2.
//
// Semantics are those of Kafka's classic group coordinator (package
// broker/group holds the state machine): KIP-394 member ids from JoinGroup
// v4, KIP-345 static membership from v5, KIP-814 skip-assignment from v9,
// protocol type/name checks on SyncGroup v5. Differences from Kafka:
//   - FindCoordinator with key type transaction answers the leader of the
//     id's __transaction_state partition (transactions.go); key type share
//     (2) answers COORDINATOR_NOT_AVAILABLE: there is no share coordinator.
//     FindCoordinator v0 must stay advertised: librdkafka gates LZ4
//     compression on it.
//   - A failed append of group metadata after SyncGroup is logged and the
//     members get UNKNOWN_SERVER_ERROR; Kafka instead resets the
//     assignment and answers with the storage error.
//   - group.max.size is not enforced.
//
// ACLs as in Kafka: FindCoordinator needs DESCRIBE on the group
// (GROUP_AUTHORIZATION_FAILED) or transactional id
// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED); JoinGroup, SyncGroup, Heartbeat
// and LeaveGroup READ on the group; DescribeGroups DESCRIBE on each group
// (authorized operations filled when asked for, v3+); ListGroups lists all
// groups with DESCRIBE on the cluster, else those the client may DESCRIBE;
// DeleteGroups DELETE on each group.

import (
	"context"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/raft"

	"github.com/stromhq/strom/broker/group"
)

func init() {
	register(&kmsg.FindCoordinatorRequest{}, 0, 6, (*Broker).handleFindCoordinator)
	register(&kmsg.JoinGroupRequest{}, 0, 9, (*Broker).handleJoinGroup)
	register(&kmsg.SyncGroupRequest{}, 0, 5, (*Broker).handleSyncGroup)
	register(&kmsg.HeartbeatRequest{}, 0, 4, (*Broker).handleHeartbeat)
	register(&kmsg.LeaveGroupRequest{}, 0, 5, (*Broker).handleLeaveGroup)
	register(&kmsg.DescribeGroupsRequest{}, 0, 6, (*Broker).handleDescribeGroups)
	register(&kmsg.ListGroupsRequest{}, 0, 5, (*Broker).handleListGroups)
	register(&kmsg.DeleteGroupsRequest{}, 0, 2, (*Broker).handleDeleteGroups)
}

// Coordinator key types of FindCoordinator.
const (
	coordinatorGroup int8 = 0
	coordinatorTxn   int8 = 1
	coordinatorShare int8 = 2
)

func (b *Broker) handleFindCoordinator(rq *request, req *kmsg.FindCoordinatorRequest) reply {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	find := func(key string) (int32, string, int32, *kerr.Error) {
		var t *raft.Topic
		var e *kerr.Error
		switch req.CoordinatorType {
		case coordinatorGroup:
			if !b.authorized(rq, opDescribe, resGroup, key) {
				return -1, "", -1, kerr.GroupAuthorizationFailed
			}
			t, e = b.ensureOffsetsTopic(rq.c.ctx)
		case coordinatorTxn:
			if !b.authorized(rq, opDescribe, resTxnID, key) {
				return -1, "", -1, kerr.TransactionalIDAuthorizationFailed
			}
			t, e = b.ensureTxnTopic(rq.c.ctx)
		case coordinatorShare:
			return -1, "", -1, kerr.CoordinatorNotAvailable
		default:
			return -1, "", -1, kerr.InvalidRequest
		}
		if e != nil {
			return -1, "", -1, e
		}
		p := t.Partitions[groupPartition(key, len(t.Partitions))]
		br, ok := b.node.State().Brokers[p.Leader]
		if p.Leader < 0 || !ok || br.Fenced {
			return -1, "", -1, kerr.CoordinatorNotAvailable
		}
		host, port, ok := brokerEndpoint(br, rq.c.listenerName())
		if !ok {
			return -1, "", -1, kerr.CoordinatorNotAvailable
		}
		return br.ID, host, port, nil
	}
	if req.Version < 4 {
		id, host, port, e := find(req.CoordinatorKey)
		resp.NodeID, resp.Host, resp.Port = id, host, port
		if e != nil {
			resp.ErrorCode = e.Code
			resp.ErrorMessage = kmsg.StringPtr(e.Description)
		}
		return now(resp)
	}
	for _, key := range req.CoordinatorKeys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key = key
		id, host, port, e := find(key)
		c.NodeID, c.Host, c.Port = id, host, port
		if e != nil {
			c.ErrorCode = e.Code
			c.ErrorMessage = kmsg.StringPtr(e.Description)
		}
		resp.Coordinators = append(resp.Coordinators, c)
	}
	return now(resp)
}

// clientHost is the member's host as Kafka reports it ("/127.0.0.1").
func clientHost(rq *request) string {
	remote := rq.c.nc.RemoteAddr().String()
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	return "/" + host
}

func (b *Broker) handleJoinGroup(rq *request, req *kmsg.JoinGroupRequest) reply {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	fail := func(e *kerr.Error) reply {
		resp.ErrorCode = e.Code
		resp.Generation = -1
		resp.MemberID = req.MemberID
		if req.Version < 7 {
			resp.Protocol = kmsg.StringPtr("")
		}
		return now(resp)
	}
	if !b.authorized(rq, opRead, resGroup, req.Group) {
		return fail(kerr.GroupAuthorizationFailed)
	}
	if req.Group == "" {
		return fail(kerr.InvalidGroupID)
	}
	sh, e := b.groups.shardFor(req.Group)
	if e != nil {
		return fail(e)
	}
	jr := group.JoinRequest{
		MemberID: req.MemberID, InstanceID: req.InstanceID, ClientID: rq.clientID, ClientHost: clientHost(rq),
		ProtocolType:           req.ProtocolType,
		SessionTimeout:         time.Duration(req.SessionTimeoutMillis) * time.Millisecond,
		RebalanceTimeout:       time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond,
		RequireKnownMemberID:   req.Version >= 4,
		SupportsSkipAssignment: req.Version >= 9,
	}
	if req.Version == 0 {
		jr.RebalanceTimeout = jr.SessionTimeout
	}
	for _, p := range req.Protocols {
		jr.Protocols = append(jr.Protocols, group.Protocol{Name: p.Name, Metadata: p.Metadata})
	}
	type answer struct {
		r      group.JoinResult
		syncTo internalWrite
	}
	ch := make(chan answer, 1)
	t := time.Now()
	sh.mu.Lock()
	g := b.groups.getOrCreate(sh, req.Group, req.MemberID == "", t)
	if g == nil {
		sh.mu.Unlock()
		return fail(kerr.UnknownMemberID)
	}
	g.Join(t, jr, func(r group.JoinResult) {
		sh.deliver(func(syncTo internalWrite) { ch <- answer{r, syncTo} })
	})
	_, _ = b.groups.finish(sh, t, nil, g)
	sh.mu.Unlock()
	return reply{wait: func(ctx context.Context) kmsg.Response {
		var a answer
		select {
		case a = <-ch:
		case <-ctx.Done():
			resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
			resp.Generation = -1
			return resp
		}
		r := a.r
		if r.Err == nil {
			r.Err = sh.waitDurable(ctx, a.syncTo)
		}
		resp.MemberID = r.MemberID
		resp.Generation = r.Generation
		resp.LeaderID = r.Leader
		resp.SkipAssignment = r.SkipAssignment
		if r.Err != nil {
			resp.ErrorCode = r.Err.Code
			resp.Generation = -1
			if req.Version < 7 {
				resp.Protocol = kmsg.StringPtr("")
			}
			return resp
		}
		resp.Protocol = kmsg.StringPtr(r.Protocol)
		resp.ProtocolType = kmsg.StringPtr(r.ProtocolType)
		for _, m := range r.Members {
			rm := kmsg.NewJoinGroupResponseMember()
			rm.MemberID, rm.InstanceID, rm.ProtocolMetadata = m.MemberID, m.InstanceID, m.Metadata
			resp.Members = append(resp.Members, rm)
		}
		return resp
	}}
}

func (b *Broker) handleSyncGroup(rq *request, req *kmsg.SyncGroupRequest) reply {
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	fail := func(e *kerr.Error) reply {
		resp.ErrorCode = e.Code
		return now(resp)
	}
	// From v5 the protocol type and name are mandatory; Kafka checks that
	// before anything else, authorization included.
	if req.Version >= 5 && (req.ProtocolType == nil || req.Protocol == nil) {
		return fail(kerr.InconsistentGroupProtocol)
	}
	if !b.authorized(rq, opRead, resGroup, req.Group) {
		return fail(kerr.GroupAuthorizationFailed)
	}
	if req.Group == "" {
		return fail(kerr.InvalidGroupID)
	}
	sh, e := b.groups.shardFor(req.Group)
	if e != nil {
		return fail(e)
	}
	sr := group.SyncRequest{MemberID: req.MemberID, InstanceID: req.InstanceID, Generation: req.Generation,
		ProtocolType: req.ProtocolType, Protocol: req.Protocol, Assignments: map[string][]byte{}}
	for _, a := range req.GroupAssignment {
		sr.Assignments[a.MemberID] = a.MemberAssignment
	}
	type answer struct {
		r      group.SyncResult
		syncTo internalWrite
	}
	ch := make(chan answer, 1)
	t := time.Now()
	sh.mu.Lock()
	g := sh.groups[req.Group]
	if g == nil {
		sh.mu.Unlock()
		return fail(kerr.UnknownMemberID)
	}
	g.Sync(t, sr, func(r group.SyncResult) {
		sh.deliver(func(syncTo internalWrite) { ch <- answer{r, syncTo} })
	})
	_, _ = b.groups.finish(sh, t, nil, g)
	sh.mu.Unlock()
	return reply{wait: func(ctx context.Context) kmsg.Response {
		var a answer
		select {
		case a = <-ch:
		case <-ctx.Done():
			resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
			return resp
		}
		r := a.r
		if r.Err == nil {
			r.Err = sh.waitDurable(ctx, a.syncTo)
		}
		if r.Err != nil {
			resp.ErrorCode = r.Err.Code
			return resp
		}
		resp.ProtocolType = kmsg.StringPtr(r.ProtocolType)
		resp.Protocol = kmsg.StringPtr(r.Protocol)
		resp.MemberAssignment = r.Assignment
		if resp.MemberAssignment == nil {
			resp.MemberAssignment = []byte{}
		}
		return resp
	}}
}

func (b *Broker) handleHeartbeat(rq *request, req *kmsg.HeartbeatRequest) reply {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	if !b.authorized(rq, opRead, resGroup, req.Group) {
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return now(resp)
	}
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return now(resp)
	}
	sh, e := b.groups.shardFor(req.Group)
	if e != nil {
		resp.ErrorCode = e.Code
		return now(resp)
	}
	t := time.Now()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	g := sh.groups[req.Group]
	if g == nil {
		resp.ErrorCode = kerr.UnknownMemberID.Code
		return now(resp)
	}
	if e := g.Heartbeat(t, req.MemberID, req.InstanceID, req.Generation); e != nil {
		resp.ErrorCode = e.Code
	}
	return now(resp)
}

func (b *Broker) handleLeaveGroup(rq *request, req *kmsg.LeaveGroupRequest) reply {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	var leaving []group.LeaveMember
	if req.Version < 3 {
		leaving = []group.LeaveMember{{MemberID: req.MemberID}}
	} else {
		for _, m := range req.Members {
			leaving = append(leaving, group.LeaveMember{MemberID: m.MemberID, InstanceID: m.InstanceID})
		}
	}
	if !b.authorized(rq, opRead, resGroup, req.Group) {
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return now(resp)
	}
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return now(resp)
	}
	sh, e := b.groups.shardFor(req.Group)
	if e != nil {
		resp.ErrorCode = e.Code
		return now(resp)
	}
	t := time.Now()
	sh.mu.Lock()
	g := sh.groups[req.Group]
	var top *kerr.Error
	errs := make([]*kerr.Error, len(leaving))
	if g == nil {
		for i := range errs {
			errs[i] = kerr.UnknownMemberID
		}
	} else {
		top, errs = g.Leave(t, leaving)
	}
	syncTo, _ := b.groups.finish(sh, t, nil, g)
	sh.mu.Unlock()
	if top != nil {
		resp.ErrorCode = top.Code
		return now(resp)
	}
	if req.Version < 3 {
		if errs[0] != nil {
			resp.ErrorCode = errs[0].Code
		}
	} else {
		for i, lm := range leaving {
			m := kmsg.NewLeaveGroupResponseMember()
			m.MemberID, m.InstanceID = lm.MemberID, lm.InstanceID
			if errs[i] != nil {
				m.ErrorCode = errs[i].Code
			}
			resp.Members = append(resp.Members, m)
		}
	}
	return reply{wait: func(ctx context.Context) kmsg.Response {
		if e := sh.waitDurable(ctx, syncTo); e != nil {
			resp.ErrorCode = e.Code
		}
		return resp
	}}
}

func (b *Broker) handleDescribeGroups(rq *request, req *kmsg.DescribeGroupsRequest) reply {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, id := range req.Groups {
		rg := kmsg.NewDescribeGroupsResponseGroup()
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
		if g == nil || g.State() == group.Dead {
			sh.mu.Unlock()
			rg.State = group.Dead.String()
			if req.Version >= 6 {
				rg.ErrorCode = kerr.GroupIDNotFound.Code
				rg.ErrorMessage = kmsg.StringPtr("Group " + id + " not found.")
			}
			resp.Groups = append(resp.Groups, rg)
			continue
		}
		rg.State = g.StateName()
		rg.ProtocolType = g.ProtocolType()
		if req.IncludeAuthorizedOperations {
			// Only groups described without error carry them, as in Kafka.
			rg.AuthorizedOperations = b.authorizedOps(rq, resGroup, id)
		}
		protocol, members := g.Describe()
		sh.mu.Unlock()
		rg.Protocol = protocol
		for _, m := range members {
			rm := kmsg.NewDescribeGroupsResponseGroupMember()
			rm.MemberID, rm.InstanceID, rm.ClientID, rm.ClientHost = m.MemberID, m.InstanceID, m.ClientID, m.ClientHost
			rm.ProtocolMetadata, rm.MemberAssignment = m.Metadata, m.Assignment
			if rm.ProtocolMetadata == nil {
				rm.ProtocolMetadata = []byte{}
			}
			if rm.MemberAssignment == nil {
				rm.MemberAssignment = []byte{}
			}
			rg.Members = append(rg.Members, rm)
		}
		resp.Groups = append(resp.Groups, rg)
	}
	return now(resp)
}

func (b *Broker) handleListGroups(rq *request, req *kmsg.ListGroupsRequest) reply {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	matches := func(filter []string, v string) bool {
		return len(filter) == 0 || slices.ContainsFunc(filter, func(f string) bool { return strings.EqualFold(f, v) })
	}
	all := b.authorizedCluster(rq, opDescribe)
	for _, sh := range b.groups.ledShards() {
		sh.mu.Lock()
		for id, g := range sh.groups {
			state := g.StateName()
			if g.State() == group.Dead || !matches(req.StatesFilter, state) || !matches(req.TypesFilter, g.Type()) ||
				!all && !b.authorized(rq, opDescribe, resGroup, id) {
				continue
			}
			lg := kmsg.NewListGroupsResponseGroup()
			lg.Group, lg.ProtocolType, lg.GroupState, lg.GroupType = id, g.ProtocolType(), state, g.Type()
			resp.Groups = append(resp.Groups, lg)
		}
		sh.mu.Unlock()
	}
	slices.SortFunc(resp.Groups, func(a, b kmsg.ListGroupsResponseGroup) int { return strings.Compare(a.Group, b.Group) })
	return now(resp)
}

func (b *Broker) handleDeleteGroups(rq *request, req *kmsg.DeleteGroupsRequest) reply {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	type durable struct {
		sh *shard
		w  internalWrite
		i  int
	}
	var waits []durable
	for _, id := range req.Groups {
		rg := kmsg.NewDeleteGroupsResponseGroup()
		rg.Group = id
		if !b.authorized(rq, opDelete, resGroup, id) {
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
		t := time.Now()
		sh.mu.Lock()
		g := sh.groups[id]
		switch {
		case g == nil || g.State() == group.Dead:
			rg.ErrorCode = kerr.GroupIDNotFound.Code
		case g.State() != group.Empty:
			rg.ErrorCode = kerr.NonEmptyGroup.Code
		default:
			var recs []record
			for _, tp := range g.Offsets() {
				recs = append(recs, record{key: offsetKey(id, tp)})
			}
			recs = appendConsumerRecords(recs, g.ConsumerTombstones())
			recs = append(recs, record{key: groupKey(id)})
			// The group goes once its tombstones are appended: a failed
			// append must not drop from memory what the log still holds.
			// It is Empty, so MarkDead answers no member.
			w, err := b.groups.finish(sh, t, recs)
			if err != nil {
				rg.ErrorCode = appendFailed.Code
			} else {
				g.MarkDead(t)
				delete(sh.groups, id)
				waits = append(waits, durable{sh, w, len(resp.Groups)})
			}
		}
		sh.mu.Unlock()
		resp.Groups = append(resp.Groups, rg)
	}
	if len(waits) == 0 {
		return now(resp)
	}
	return reply{wait: func(ctx context.Context) kmsg.Response {
		for _, d := range waits {
			if e := d.sh.waitDurable(ctx, d.w); e != nil {
				resp.Groups[d.i].ErrorCode = e.Code
			}
		}
		return resp
	}}
}

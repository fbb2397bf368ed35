package broker

// Committed offsets: OffsetCommit 0-10, OffsetFetch 0-10 (several groups per
// request v8+, topic ids v10), OffsetDelete 0.
//
// Offsets are records of __consumer_offsets (Kafka's OffsetCommitKey v1 and
// OffsetCommitValue v3, or v1 when a v2-v4 commit asked for its own
// retention); a commit is answered only after its records are durable.
// Commits with generation -1 from non-members (simple consumers, admin
// tools) are accepted while the group is Empty and create the group if
// needed; members must name their current generation (ILLEGAL_GENERATION,
// UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID, REBALANCE_IN_PROGRESS between join
// and sync), as in Kafka. Metadata and the leader epoch round-trip.
// Offsets expire after offsets.retention.minutes (KIP-211: from the moment
// the group became Empty; per commit for groups that never joined).
//
// An OffsetFetch is answered only once every write its shard of
// __consumer_offsets held when it was read is replicated (readBarrier):
// commits are applied to the groups' state as they are appended, and an
// offset shown before the followers have it could vanish with a leader
// failover after a consumer started from it. Kafka reads the state as of
// the high watermark instead; both show only committed offsets.
//
// RequireStable (v7+) answers UNSTABLE_OFFSET_COMMIT for partitions with an
// offset committed by a still open transaction (KIP-447).
//
// ACLs as in Kafka: OffsetCommit needs READ on the group (every partition
// GROUP_AUTHORIZATION_FAILED) and READ on each topic; OffsetFetch READ on
// the group and DESCRIBE on each topic (fetching all offsets leaves out
// topics the client may not describe); OffsetDelete DELETE on the group and
// READ on each topic. Denied topics are TOPIC_AUTHORIZATION_FAILED.
//
// Differences from Kafka: offsets of
// topics a non-empty group stopped subscribing to do not expire (KIP-496).

import (
	"context"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/broker/group"
	"github.com/stromhq/strom/raft"
)

func init() {
	register(&kmsg.OffsetCommitRequest{}, 0, 10, (*Broker).handleOffsetCommit)
	register(&kmsg.OffsetFetchRequest{}, 0, 10, (*Broker).handleOffsetFetch)
	register(&kmsg.OffsetDeleteRequest{}, 0, 0, (*Broker).handleOffsetDelete)
}

// topicExists reports whether topic has partition p.
func topicHas(st *raft.State, topic string, p int32) bool {
	t, ok := st.Topics[topic]
	return ok && p >= 0 && int(p) < len(t.Partitions)
}

func (b *Broker) handleOffsetCommit(rq *request, req *kmsg.OffsetCommitRequest) reply {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	st := b.node.State()
	// Build the answer skeleton; codes[i][j] is filled below.
	names := make([]string, len(req.Topics))
	for i, rt := range req.Topics {
		ot := kmsg.NewOffsetCommitResponseTopic()
		ot.Topic, ot.TopicID = rt.Topic, rt.TopicID
		names[i] = rt.Topic
		if req.Version >= 10 {
			names[i] = ""
			if t, ok := st.TopicsByID[rt.TopicID]; ok {
				names[i] = t.Name
			}
		}
		for _, rp := range rt.Partitions {
			op := kmsg.NewOffsetCommitResponseTopicPartition()
			op.Partition = rp.Partition
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	setAll := func(e *kerr.Error) reply {
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				resp.Topics[i].Partitions[j].ErrorCode = e.Code
			}
		}
		return now(resp)
	}
	if !b.authorized(rq, opRead, resGroup, req.Group) {
		return setAll(kerr.GroupAuthorizationFailed)
	}
	if req.Group == "" {
		return setAll(kerr.InvalidGroupID)
	}
	sh, e := b.groups.shardFor(req.Group)
	if e != nil {
		return setAll(e)
	}
	topicDenied := make([]bool, len(req.Topics))
	for i := range req.Topics {
		topicDenied[i] = names[i] != "" && !b.authorized(rq, opRead, resTopic, names[i])
	}
	t := time.Now()
	nowMS := t.UnixMilli()
	gen := req.Generation
	if req.Version == 0 {
		gen = -1
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	// Topics are checked against a state read under sh.mu: a tick purges a
	// deleted topic's offsets under sh.mu with a state it read there, so a
	// commit either sees the deletion or lands before that purge.
	st = b.node.State()
	g := b.groups.getOrCreate(sh, req.Group, gen < 0, t)
	if g == nil {
		return setAll(kerr.IllegalGeneration)
	}
	perPartition := false
	if e := g.ValidateCommit(req.MemberID, req.InstanceID, gen); e != nil {
		if e != kerr.StaleMemberEpoch || !g.IsConsumer() {
			return setAll(e)
		}
		// An older member epoch may still commit the partitions it has
		// held since then.
		perPartition = true
	}
	g.Touch(t, req.MemberID)
	var recs []record
	type commit struct {
		tp group.TopicPartition
		o  group.Offset
	}
	var commits []commit
	for i, rt := range req.Topics {
		for j, rp := range rt.Partitions {
			out := &resp.Topics[i].Partitions[j]
			switch {
			case req.Version >= 10 && (names[i] == "" || st.TopicsByID[rt.TopicID] == nil):
				// (Gone since the name was looked up, before sh.mu.)
				out.ErrorCode = kerr.UnknownTopicID.Code
				continue
			case topicDenied[i]:
				out.ErrorCode = kerr.TopicAuthorizationFailed.Code
				continue
			case !topicHas(st, names[i], rp.Partition):
				out.ErrorCode = kerr.UnknownTopicOrPartition.Code
				continue
			case rp.Metadata != nil && len(*rp.Metadata) > offsetMetadataMaxBytes:
				out.ErrorCode = kerr.OffsetMetadataTooLarge.Code
				continue
			case perPartition && !g.CommitAllowed(req.MemberID, gen, st.Topics[names[i]].ID, rp.Partition):
				out.ErrorCode = kerr.StaleMemberEpoch.Code
				continue
			}
			o := group.Offset{Offset: rp.Offset, LeaderEpoch: -1, CommitTime: nowMS, ExpireTime: -1, TopicID: st.Topics[names[i]].ID}
			if rp.Metadata != nil {
				o.Metadata = *rp.Metadata
			}
			if req.Version >= 6 {
				o.LeaderEpoch = rp.LeaderEpoch
			}
			if req.Version == 1 && rp.Timestamp != -1 {
				o.CommitTime = rp.Timestamp
			}
			if req.Version >= 2 && req.Version <= 4 && req.RetentionTimeMillis != -1 {
				o.ExpireTime = nowMS + req.RetentionTimeMillis
			}
			tp := group.TopicPartition{Topic: names[i], Partition: rp.Partition}
			commits = append(commits, commit{tp, o})
			recs = append(recs, record{key: offsetKey(req.Group, tp), value: offsetValue(o)})
		}
	}
	off, err := b.groups.finish(sh, t, recs, g)
	if err != nil {
		return setAll(appendFailed)
	}
	for _, c := range commits {
		g.Commit(c.tp, c.o)
	}
	return reply{wait: func(ctx context.Context) kmsg.Response {
		if e := sh.waitDurable(ctx, off); e != nil {
			for i := range resp.Topics {
				for j := range resp.Topics[i].Partitions {
					if resp.Topics[i].Partitions[j].ErrorCode == 0 {
						resp.Topics[i].Partitions[j].ErrorCode = e.Code
					}
				}
			}
		}
		return resp
	}}
}

// fetchTopic is one requested topic of an OffsetFetch: by name, or by id
// (v10) with the name resolved; partitions nil means all committed.
type fetchTopic struct {
	name       string
	id         [16]byte
	partitions []int32
}

// fetchGroupOffsetsAuthorized is fetchGroupOffsets behind Kafka's ACL
// checks: READ on the group, DESCRIBE on each topic. Named topics the client
// may not describe are answered TOPIC_AUTHORIZATION_FAILED after the others;
// with all they are left out.
func (b *Broker) fetchGroupOffsetsAuthorized(rq *request, groupID string, memberID *string, memberEpoch int32, topics []fetchTopic, all bool, byID bool, requireStable bool) ([]kmsg.OffsetFetchResponseGroupTopic, internalWrite, *kerr.Error) {
	if !b.authz.enabled {
		return b.fetchGroupOffsets(groupID, memberID, memberEpoch, topics, all, byID, requireStable)
	}
	if !b.authorized(rq, opRead, resGroup, groupID) {
		return nil, noWrite, kerr.GroupAuthorizationFailed
	}
	describable := func(name string) bool { return b.authorized(rq, opDescribe, resTopic, name) }
	var allowed, denied []fetchTopic
	for _, ft := range topics {
		// An unknown topic id (empty name) is answered by fetchGroupOffsets.
		if ft.name == "" || describable(ft.name) {
			allowed = append(allowed, ft)
		} else {
			denied = append(denied, ft)
		}
	}
	if topics != nil && allowed == nil {
		allowed = []fetchTopic{}
	}
	out, barrier, e := b.fetchGroupOffsets(groupID, memberID, memberEpoch, allowed, all, byID, requireStable)
	if e != nil {
		return nil, noWrite, e
	}
	if all {
		st := b.node.State()
		kept := out[:0]
		for _, t := range out {
			name := t.Topic
			if byID {
				name = ""
				if tp, ok := st.TopicsByID[t.TopicID]; ok {
					name = tp.Name
				}
			}
			if describable(name) {
				kept = append(kept, t)
			}
		}
		out = kept
	}
	for _, ft := range denied {
		ot := kmsg.NewOffsetFetchResponseGroupTopic()
		ot.Topic, ot.TopicID = ft.name, ft.id
		for _, p := range ft.partitions {
			op := kmsg.NewOffsetFetchResponseGroupTopicPartition()
			op.Partition, op.Offset, op.ErrorCode = p, -1, kerr.TopicAuthorizationFailed.Code
			ot.Partitions = append(ot.Partitions, op)
		}
		out = append(out, ot)
	}
	return out, barrier, nil
}

// fetchGroupOffsets answers one group of an OffsetFetch. topics nil means
// every committed offset of the group. The answer must not be sent before
// the returned barrier is replicated (readBarrier).
func (b *Broker) fetchGroupOffsets(groupID string, memberID *string, memberEpoch int32, topics []fetchTopic, all bool, byID bool, requireStable bool) ([]kmsg.OffsetFetchResponseGroupTopic, internalWrite, *kerr.Error) {
	if groupID == "" {
		return nil, noWrite, kerr.InvalidGroupID
	}
	sh, e := b.groups.shardFor(groupID)
	if e != nil {
		return nil, noWrite, e
	}
	st := b.node.State()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	g := sh.groups[groupID]
	if g != nil {
		if e := g.ValidateFetch(); e != nil {
			return nil, noWrite, e
		}
		if memberID != nil {
			if e := g.ValidateConsumerFetch(*memberID, memberEpoch); e != nil {
				return nil, noWrite, e
			}
		}
	}
	barrier := sh.readBarrier()
	part := func(tp group.TopicPartition) kmsg.OffsetFetchResponseGroupTopicPartition {
		op := kmsg.NewOffsetFetchResponseGroupTopicPartition()
		op.Partition = tp.Partition
		op.Offset, op.LeaderEpoch = -1, -1
		op.Metadata = kmsg.StringPtr("")
		if requireStable && sh.hasPendingTxnOffset(groupID, tp) {
			op.ErrorCode = kerr.UnstableOffsetCommit.Code
			return op
		}
		if g != nil {
			if o, ok := g.OffsetOf(tp); ok {
				op.Offset, op.LeaderEpoch = o.Offset, o.LeaderEpoch
				op.Metadata = kmsg.StringPtr(o.Metadata)
			}
		}
		return op
	}
	var out []kmsg.OffsetFetchResponseGroupTopic
	if all {
		if g == nil {
			return nil, barrier, nil
		}
		var cur *kmsg.OffsetFetchResponseGroupTopic
		for _, tp := range g.Offsets() {
			if cur == nil || cur.Topic != tp.Topic {
				ot := kmsg.NewOffsetFetchResponseGroupTopic()
				ot.Topic = tp.Topic
				if byID {
					t, ok := st.Topics[tp.Topic]
					if !ok {
						cur = nil
						continue // topic deleted: it has no id to report
					}
					ot.TopicID = t.ID
				}
				out = append(out, ot)
				cur = &out[len(out)-1]
			}
			cur.Partitions = append(cur.Partitions, part(tp))
		}
		return out, barrier, nil
	}
	for _, ft := range topics {
		ot := kmsg.NewOffsetFetchResponseGroupTopic()
		ot.Topic, ot.TopicID = ft.name, ft.id
		for _, p := range ft.partitions {
			op := part(group.TopicPartition{Topic: ft.name, Partition: p})
			if byID && ft.name == "" {
				op.ErrorCode = kerr.UnknownTopicID.Code
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		out = append(out, ot)
	}
	return out, barrier, nil
}

func (b *Broker) handleOffsetFetch(rq *request, req *kmsg.OffsetFetchRequest) reply {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	st := b.node.State()
	if req.Version >= 8 {
		barriers := make([]internalWrite, len(req.Groups))
		for i, rg := range req.Groups {
			var fts []fetchTopic
			for _, rt := range rg.Topics {
				ft := fetchTopic{name: rt.Topic, id: rt.TopicID, partitions: rt.Partitions}
				if req.Version >= 10 {
					ft.name = ""
					if t, ok := st.TopicsByID[rt.TopicID]; ok {
						ft.name = t.Name
					}
				}
				fts = append(fts, ft)
			}
			og := kmsg.NewOffsetFetchResponseGroup()
			og.Group = rg.Group
			topics, barrier, e := b.fetchGroupOffsetsAuthorized(rq, rg.Group, rg.MemberID, rg.MemberEpoch, fts, rg.Topics == nil, req.Version >= 10, req.RequireStable)
			if e != nil {
				og.ErrorCode = e.Code
			} else {
				og.Topics = topics
			}
			barriers[i] = barrier
			resp.Groups = append(resp.Groups, og)
		}
		return afterBarriers(resp, barriers, func(i int, e *kerr.Error) {
			resp.Groups[i].ErrorCode, resp.Groups[i].Topics = e.Code, nil
		})
	}
	var fts []fetchTopic
	for _, rt := range req.Topics {
		fts = append(fts, fetchTopic{name: rt.Topic, partitions: rt.Partitions})
	}
	all := req.Topics == nil && req.Version >= 2
	topics, barrier, e := b.fetchGroupOffsetsAuthorized(rq, req.Group, nil, -1, fts, all, false, req.Version >= 7 && req.RequireStable)
	if e != nil {
		offsetFetchFailed(resp, fts, e)
		return now(resp)
	}
	for _, t := range topics {
		ot := kmsg.NewOffsetFetchResponseTopic()
		ot.Topic = t.Topic
		for _, p := range t.Partitions {
			op := kmsg.NewOffsetFetchResponseTopicPartition()
			op.Partition, op.Offset, op.LeaderEpoch, op.Metadata, op.ErrorCode = p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return afterBarriers(resp, []internalWrite{barrier}, func(_ int, e *kerr.Error) {
		resp.Topics = nil
		offsetFetchFailed(resp, fts, e)
	})
}

// offsetFetchFailed answers a whole pre-v8 OffsetFetch with e: in the
// top-level error from v2 on, in every named partition before (v0-1 have
// no top-level error).
func offsetFetchFailed(resp *kmsg.OffsetFetchResponse, fts []fetchTopic, e *kerr.Error) {
	if resp.Version >= 2 {
		resp.ErrorCode = e.Code
		return
	}
	for _, ft := range fts {
		ot := kmsg.NewOffsetFetchResponseTopic()
		ot.Topic = ft.name
		for _, p := range ft.partitions {
			op := kmsg.NewOffsetFetchResponseTopicPartition()
			op.Partition, op.Offset, op.ErrorCode = p, -1, e.Code
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
}

// afterBarriers sends resp once every barrier is replicated; a barrier
// that cannot be (leadership lost, timed out) has its part of the answer
// replaced by fail(i, e), e retriable, since what was read may yet be
// lost.
func afterBarriers(resp kmsg.Response, barriers []internalWrite, fail func(i int, e *kerr.Error)) reply {
	if !slices.ContainsFunc(barriers, func(w internalWrite) bool { return w != noWrite }) {
		return now(resp)
	}
	return reply{wait: func(ctx context.Context) kmsg.Response {
		waitBarriers(ctx, barriers, barrierTimeout, fail)
		return resp
	}}
}

// barrierTimeout bounds an answer's wait for all its barriers together.
const barrierTimeout = 30 * time.Second

// waitBarriers waits for every barrier within one timeout and calls fail for
// those not replicated by then. The barriers are already written and
// replicate together, so waiting for them in turn costs only the slowest;
// the shared deadline keeps a stalled follower, which stalls them all, from
// costing the timeout once per barrier.
func waitBarriers(ctx context.Context, barriers []internalWrite, timeout time.Duration, fail func(i int, e *kerr.Error)) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for i, w := range barriers {
		if e := w.replicated(ctx); e != nil {
			fail(i, e)
		}
	}
}

func (b *Broker) handleOffsetDelete(rq *request, req *kmsg.OffsetDeleteRequest) reply {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	if !b.authorized(rq, opDelete, resGroup, req.Group) {
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
	st := b.node.State()
	t := time.Now()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	g := sh.groups[req.Group]
	if g == nil || g.State() == group.Dead {
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		return now(resp)
	}
	var recs []record
	// Offsets leave the group only once their tombstones are appended: a
	// failed append must not drop from memory what the log still holds.
	var deleted []group.TopicPartition
	for _, rt := range req.Topics {
		ot := kmsg.NewOffsetDeleteResponseTopic()
		ot.Topic = rt.Topic
		subscribed := g.Subscribed(rt.Topic)
		for _, rp := range rt.Partitions {
			op := kmsg.NewOffsetDeleteResponseTopicPartition()
			op.Partition = rp.Partition
			tp := group.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}
			switch {
			case !b.authorized(rq, opRead, resTopic, rt.Topic):
				op.ErrorCode = kerr.TopicAuthorizationFailed.Code
			case !topicHas(st, rt.Topic, rp.Partition):
				op.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case subscribed:
				op.ErrorCode = kerr.GroupSubscribedToTopic.Code
			default:
				if _, ok := g.OffsetOf(tp); ok {
					deleted = append(deleted, tp)
					recs = append(recs, record{key: offsetKey(req.Group, tp)})
				}
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	off, err := b.groups.finish(sh, t, recs, g)
	if err != nil {
		resp.ErrorCode = appendFailed.Code
		return now(resp)
	}
	for _, tp := range deleted {
		g.DeleteOffset(tp)
	}
	return reply{wait: func(ctx context.Context) kmsg.Response {
		if e := sh.waitDurable(ctx, off); e != nil {
			resp.ErrorCode = e.Code
		}
		return resp
	}}
}

package broker

// CreateTopics 0-7, DeleteTopics 0-6, CreatePartitions 0-3.
//
// Topics, their IDs, partition assignments and configs are raft commands; the
// partition manager opens or deletes the logs before the request is answered.
// Validation follows Kafka: names (legal characters, length <= 249, not "."
// or "..", no collision between '.' and '_'), partition counts, replication
// factor vs registered brokers (INVALID_REPLICATION_FACTOR), configs against
// Kafka's topic config table (INVALID_CONFIG), duplicates in one request
// (INVALID_REQUEST), validate_only. Differences from Kafka:
//   - request timeouts are not applied: raft commits quickly or fails.
//   - manual replica assignments must name registered brokers; they are
//     accepted as given (no rack awareness).
//   - automatic placement is rack-aware (raft.PlaceReplicas); its rotation
//     starts at a position derived from the topic ID instead of KRaft's
//     random one, so a topic's placement is reproducible from its ID.
//
// ACLs, as Kafka's controller checks them: CreateTopics needs CREATE on the
// cluster or the topic, and returns a created topic's configs only with
// DESCRIBE_CONFIGS on it (TopicConfigErrorCode TOPIC_AUTHORIZATION_FAILED
// otherwise); DeleteTopics needs DELETE on the cluster or the topic (a
// topic the client may not DESCRIBE is denied before its existence is
// checked, one it may describe but not delete after); CreatePartitions ALTER
// on the topic (no cluster-wide grant, as in Kafka's controller). Denied
// topics are TOPIC_AUTHORIZATION_FAILED, checked after duplicates.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/raft"
)

func init() {
	register(&kmsg.CreateTopicsRequest{}, 0, 7, (*Broker).handleCreateTopics)
	register(&kmsg.DeleteTopicsRequest{}, 0, 6, (*Broker).handleDeleteTopics)
	register(&kmsg.CreatePartitionsRequest{}, 0, 3, (*Broker).handleCreatePartitions)
}

// maxTopicNameLen is Kafka's limit on topic names.
const maxTopicNameLen = 249

// maxPartitionsPerOp is Kafka's controller limit on partitions created by one
// operation (MAX_PARTITIONS_PER_BATCH); beyond it the answer is
// POLICY_VIOLATION, "Excessively large number of partitions per request."
const maxPartitionsPerOp = 10000

// validateTopicName applies Kafka's topic name rules.
func validateTopicName(name string) error {
	switch {
	case name == "":
		return errors.New("topic name is illegal, it can't be empty")
	case name == "." || name == "..":
		return errors.New("topic name cannot be \".\" or \"..\"")
	case len(name) > maxTopicNameLen:
		return fmt.Errorf("topic name is illegal, it can't be longer than %d characters, topic name: %s", maxTopicNameLen, name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("topic name %s is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'", name)
		}
	}
	return nil
}

// collidingTopic returns an existing topic whose name differs from name only
// by '.' versus '_' (they collide in metric names), or "".
func collidingTopic(st *raft.State, name string) string {
	norm := strings.ReplaceAll(name, ".", "_")
	for other := range st.Topics {
		if other != name && strings.ReplaceAll(other, ".", "_") == norm {
			return other
		}
	}
	return ""
}

// liveBrokers returns the ids of unfenced brokers, sorted.
func liveBrokers(st *raft.State) []int32 {
	var ids []int32
	for id, br := range st.Brokers {
		if !br.Fenced {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// assignReplicas places count partitions of the topic with ID id, starting
// at index first, on the unfenced brokers of st, rf replicas each, spread
// over racks (raft.PlaceReplicas; plain round-robin when no broker has a
// rack) from the topic's rotation start (raft.PlacementStart), so topics do
// not all begin on the same broker and new partitions continue the
// topic's pattern; the first replica leads. Errors when rf exceeds the
// unfenced brokers.
func assignReplicas(st *raft.State, id [16]byte, first, count int32, rf int16) ([]raft.Partition, error) {
	placed, err := raft.PlaceReplicas(st.SortedBrokers(), first, count, rf, raft.PlacementStart(id))
	if err != nil {
		return nil, fmt.Errorf("place %d partitions from %d: %w", count, first, err)
	}
	out := make([]raft.Partition, 0, count)
	for i, reps := range placed {
		out = append(out, raft.Partition{Index: first + int32(i), Replicas: reps, ISR: slices.Clone(reps), Leader: reps[0]})
	}
	return out, nil
}

// createTopic validates and (unless validateOnly) creates one topic. numParts
// -1 and rf -1 mean the broker defaults. It returns the created topic, or a
// Kafka error with a message.
func (b *Broker) createTopic(ctx context.Context, name string, numParts int32, rf int16, assignment [][]int32, configs map[string]string, validateOnly bool) (*raft.Topic, *kerr.Error, string) {
	if err := validateTopicName(name); err != nil {
		return nil, kerr.InvalidTopicException, err.Error()
	}
	st := b.node.State()
	if _, ok := st.Topics[name]; ok {
		return nil, kerr.TopicAlreadyExists, fmt.Sprintf("Topic '%s' already exists.", name)
	}
	if other := collidingTopic(st, name); other != "" {
		return nil, kerr.InvalidTopicException, fmt.Sprintf("Topic '%s' collides with existing topic: %s", name, other)
	}
	brokers := liveBrokers(st)
	id := raft.NewTopicID()
	var parts []raft.Partition
	if len(assignment) > maxPartitionsPerOp {
		return nil, kerr.PolicyViolation, "Excessively large number of partitions per request."
	}
	if len(assignment) > 0 {
		if numParts != -1 || rf != -1 {
			return nil, kerr.InvalidRequest, "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time."
		}
		for i, reps := range assignment {
			if len(reps) == 0 {
				return nil, kerr.InvalidReplicaAssignment, fmt.Sprintf("The manual partition assignment includes a partition with no replicas: partition %d.", i)
			}
			seen := map[int32]bool{}
			for _, r := range reps {
				if seen[r] {
					return nil, kerr.InvalidReplicaAssignment, fmt.Sprintf("The manual partition assignment includes the broker %d more than once.", r)
				}
				seen[r] = true
				if !slices.Contains(brokers, r) {
					return nil, kerr.InvalidReplicaAssignment, fmt.Sprintf("The manual partition assignment includes broker %d, but no such broker is registered.", r)
				}
			}
			parts = append(parts, raft.Partition{Index: int32(i), Replicas: slices.Clone(reps), ISR: slices.Clone(reps), Leader: reps[0]})
		}
	} else {
		if numParts == -1 {
			numParts = b.cfg.DefaultPartitions
		}
		if rf == -1 {
			rf = b.cfg.DefaultReplicationFactor
		}
		if numParts <= 0 {
			return nil, kerr.InvalidPartitions, "Number of partitions was set to an invalid non-positive value."
		}
		if numParts > maxPartitionsPerOp {
			return nil, kerr.PolicyViolation, "Excessively large number of partitions per request."
		}
		if rf <= 0 {
			return nil, kerr.InvalidReplicationFactor, "Replication factor must be larger than 0, or -1 to use the default value."
		}
		if int(rf) > len(brokers) {
			return nil, kerr.InvalidReplicationFactor, fmt.Sprintf("Unable to replicate the partition %d time(s): The target replication factor of %d cannot be reached because only %d broker(s) are registered.", rf, rf, len(brokers))
		}
		var err error
		if parts, err = assignReplicas(st, id, 0, numParts, rf); err != nil {
			return nil, metaErr(err), err.Error()
		}
	}
	for k, v := range configs {
		if err := validateTopicConfig(k, &v); err != nil {
			return nil, kerr.InvalidConfig, err.Error()
		}
	}
	t := &raft.Topic{Name: name, ID: id, Partitions: parts, Configs: maps.Clone(configs)}
	if t.Configs == nil {
		t.Configs = map[string]string{}
	}
	if validateOnly {
		return t, nil, ""
	}
	if _, err := b.apply(ctx, raft.CreateTopic{Topic: *t}); err != nil {
		if errors.Is(err, raft.ErrTopicExists) {
			return nil, kerr.TopicAlreadyExists, fmt.Sprintf("Topic '%s' already exists.", name)
		}
		return nil, metaErr(err), err.Error()
	}
	b.log.Info("created topic", "topic", name, "partitions", len(parts), "id", fmt.Sprintf("%x", t.ID))
	if created, ok := b.node.State().Topics[name]; ok {
		return created, nil, ""
	}
	return t, nil, ""
}

// metaErr maps a raft apply error to the Kafka error a client should see.
func metaErr(err error) *kerr.Error {
	switch {
	case errors.Is(err, raft.ErrNotLeader):
		return kerr.NotController
	case errors.Is(err, raft.ErrUnknownTopic):
		return kerr.UnknownTopicOrPartition
	case errors.Is(err, raft.ErrTopicExists):
		return kerr.TopicAlreadyExists
	case errors.Is(err, raft.ErrInvalidReplicationFactor):
		return kerr.InvalidReplicationFactor
	case errors.Is(err, raft.ErrInvalidPartitions):
		return kerr.InvalidPartitions
	case errors.Is(err, raft.ErrInvalidReplicaAssignment):
		return kerr.InvalidReplicaAssignment
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return kerr.RequestTimedOut
	default:
		return kerr.UnknownServerError
	}
}

func (b *Broker) handleCreateTopics(rq *request, req *kmsg.CreateTopicsRequest) reply {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	count := map[string]int{}
	for _, t := range req.Topics {
		count[t.Topic]++
	}
	clusterCreate := b.authorizedCluster(rq, opCreate)
	mq := b.mutationQuota(rq, 6)
	defer func() { resp.ThrottleMillis = max(resp.ThrottleMillis, mq.throttleMillis()) }()
	for _, rt := range req.Topics {
		out := kmsg.NewCreateTopicsResponseTopic()
		out.Topic = rt.Topic
		out.NumPartitions, out.ReplicationFactor = -1, -1
		fail := func(e *kerr.Error, msg string) {
			out.ErrorCode = e.Code
			if req.Version >= 1 {
				out.ErrorMessage = kmsg.StringPtr(msg)
			}
		}
		if count[rt.Topic] > 1 {
			fail(kerr.InvalidRequest, fmt.Sprintf("Duplicate topic name: %s", rt.Topic))
			resp.Topics = append(resp.Topics, out)
			continue
		}
		if !clusterCreate && !b.authorized(rq, opCreate, resTopic, rt.Topic) {
			fail(kerr.TopicAuthorizationFailed, kerr.TopicAuthorizationFailed.Description)
			resp.Topics = append(resp.Topics, out)
			continue
		}
		configs := map[string]string{}
		var cfgErr string
		for _, c := range rt.Configs {
			if err := validateTopicConfig(c.Name, c.Value); err != nil {
				cfgErr = err.Error()
				break
			}
			configs[c.Name] = *c.Value
		}
		if cfgErr != "" {
			fail(kerr.InvalidConfig, cfgErr)
			resp.Topics = append(resp.Topics, out)
			continue
		}
		var assignment [][]int32
		if len(rt.ReplicaAssignment) > 0 {
			sorted := slices.Clone(rt.ReplicaAssignment)
			sort.Slice(sorted, func(i, j int) bool { return sorted[i].Partition < sorted[j].Partition })
			for i, a := range sorted {
				if a.Partition != int32(i) {
					fail(kerr.InvalidReplicaAssignment, "Partitions should be consecutive and start from 0.")
					break
				}
				assignment = append(assignment, a.Replicas)
			}
			if out.ErrorCode != 0 {
				resp.Topics = append(resp.Topics, out)
				continue
			}
		}
		// The mutation quota is charged for valid topics only: validate
		// first (a dry run), then charge the partitions, then create.
		if mq.bucket != nil && !req.ValidateOnly {
			t, kerrv, msg := b.createTopic(context.Background(), rt.Topic, rt.NumPartitions, rt.ReplicationFactor, assignment, configs, true)
			if kerrv == nil && !mq.admit(len(t.Partitions)) {
				kerrv, msg = kerr.ThrottlingQuotaExceeded, errThrottlingQuotaMsg
			}
			if kerrv != nil {
				fail(kerrv, msg)
				resp.Topics = append(resp.Topics, out)
				continue
			}
		}
		t, kerrv, msg := b.createTopic(context.Background(), rt.Topic, rt.NumPartitions, rt.ReplicationFactor, assignment, configs, req.ValidateOnly)
		if kerrv != nil {
			fail(kerrv, msg)
			resp.Topics = append(resp.Topics, out)
			continue
		}
		if !req.ValidateOnly {
			out.TopicID = t.ID
		}
		out.NumPartitions = int32(len(t.Partitions))
		if len(t.Partitions) > 0 {
			out.ReplicationFactor = int16(len(t.Partitions[0].Replicas))
		}
		if !b.authorized(rq, opDescribeConfigs, resTopic, rt.Topic) {
			out.ConfigErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Topics = append(resp.Topics, out)
			continue
		}
		st := b.node.State()
		for _, d := range sortedTopicConfigNames() {
			cv := b.resolveForTopic(st, d, t.Configs)
			c := kmsg.NewCreateTopicsResponseTopicConfig()
			c.Name = d
			c.Value = kmsg.StringPtr(cv.value)
			c.Source = cv.source
			out.Configs = append(out.Configs, c)
		}
		resp.Topics = append(resp.Topics, out)
	}
	return now(resp)
}

func (b *Broker) handleDeleteTopics(rq *request, req *kmsg.DeleteTopicsRequest) reply {
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	type target struct {
		name *string
		id   [16]byte
	}
	var targets []target
	if req.Version >= 6 {
		for _, t := range req.Topics {
			targets = append(targets, target{t.Topic, t.TopicID})
		}
	} else {
		for _, n := range req.TopicNames {
			targets = append(targets, target{name: kmsg.StringPtr(n)})
		}
	}
	clusterDelete := b.authorizedCluster(rq, opDelete)
	mq := b.mutationQuota(rq, 5)
	defer func() { resp.ThrottleMillis = max(resp.ThrottleMillis, mq.throttleMillis()) }()
	for _, tg := range targets {
		out := kmsg.NewDeleteTopicsResponseTopic()
		out.Topic, out.TopicID = tg.name, tg.id
		fail := func(e *kerr.Error, msg string) {
			out.ErrorCode = e.Code
			if req.Version >= 5 {
				out.ErrorMessage = kmsg.StringPtr(msg)
			}
		}
		st := b.node.State()
		var t *raft.Topic
		switch {
		case tg.name != nil && tg.id != [16]byte{}:
			fail(kerr.InvalidRequest, "Topic name and ID cannot both be set.")
		case tg.name != nil && !clusterDelete && !b.authorized(rq, opDescribe, resTopic, *tg.name):
			// Whether the topic exists is not revealed.
			fail(kerr.TopicAuthorizationFailed, kerr.TopicAuthorizationFailed.Description)
		case tg.name != nil:
			var ok bool
			if t, ok = st.Topics[*tg.name]; !ok {
				fail(kerr.UnknownTopicOrPartition, "This server does not host this topic-partition.")
			} else if !clusterDelete && !b.authorized(rq, opDelete, resTopic, t.Name) {
				fail(kerr.TopicAuthorizationFailed, kerr.TopicAuthorizationFailed.Description)
				t = nil
			}
		default:
			var ok bool
			if t, ok = st.TopicsByID[tg.id]; !ok {
				fail(kerr.UnknownTopicID, "This server does not host this topic ID.")
			} else if !clusterDelete && !b.authorized(rq, opDelete, resTopic, t.Name) {
				// The name is given only to those who may see it.
				if b.authorized(rq, opDescribe, resTopic, t.Name) {
					out.Topic = kmsg.StringPtr(t.Name)
				}
				fail(kerr.TopicAuthorizationFailed, kerr.TopicAuthorizationFailed.Description)
				t = nil
			}
		}
		if t != nil && !mq.admit(len(t.Partitions)) {
			out.Topic, out.TopicID = kmsg.StringPtr(t.Name), t.ID
			fail(kerr.ThrottlingQuotaExceeded, errThrottlingQuotaMsg)
			t = nil
		}
		if t != nil {
			out.Topic, out.TopicID = kmsg.StringPtr(t.Name), t.ID
			if _, err := b.apply(context.Background(), raft.DeleteTopic{ID: t.ID}); err != nil {
				e := metaErr(err)
				if e == kerr.UnknownTopicOrPartition && tg.name == nil {
					e = kerr.UnknownTopicID
				}
				fail(e, err.Error())
			} else {
				b.log.Info("deleted topic", "topic", t.Name)
			}
		}
		resp.Topics = append(resp.Topics, out)
	}
	return now(resp)
}

func (b *Broker) handleCreatePartitions(rq *request, req *kmsg.CreatePartitionsRequest) reply {
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	mq := b.mutationQuota(rq, 3)
	defer func() { resp.ThrottleMillis = max(resp.ThrottleMillis, mq.throttleMillis()) }()
	count := map[string]int{}
	for _, t := range req.Topics {
		count[t.Topic]++
	}
	for _, rt := range req.Topics {
		out := kmsg.NewCreatePartitionsResponseTopic()
		out.Topic = rt.Topic
		fail := func(e *kerr.Error, msg string) {
			out.ErrorCode = e.Code
			out.ErrorMessage = kmsg.StringPtr(msg)
		}
		st := b.node.State()
		t, ok := st.Topics[rt.Topic]
		cur := int32(0)
		if ok {
			cur = int32(len(t.Partitions))
		}
		brokers := liveBrokers(st)
		switch {
		case count[rt.Topic] > 1:
			fail(kerr.InvalidRequest, "Duplicate topic in request.")
		case !b.authorized(rq, opAlter, resTopic, rt.Topic):
			fail(kerr.TopicAuthorizationFailed, kerr.TopicAuthorizationFailed.Description)
		case !ok:
			fail(kerr.UnknownTopicOrPartition, "The topic '"+rt.Topic+"' does not exist.")
		case rt.Count < cur:
			fail(kerr.InvalidPartitions, fmt.Sprintf("Topic currently has %d partitions, which is higher than the requested %d.", cur, rt.Count))
		case rt.Count == cur:
			fail(kerr.InvalidPartitions, fmt.Sprintf("Topic already has %d partitions.", cur))
		case rt.Count-cur > maxPartitionsPerOp:
			fail(kerr.PolicyViolation, "Excessively large number of partitions per request.")
		case rt.Assignment != nil && len(rt.Assignment) != int(rt.Count-cur):
			fail(kerr.InvalidReplicaAssignment, fmt.Sprintf("Attempted to add %d additional partitions, but only %d assignments were specified.", rt.Count-cur, len(rt.Assignment)))
		}
		if out.ErrorCode != 0 {
			resp.Topics = append(resp.Topics, out)
			continue
		}
		var parts []raft.Partition
		if rt.Assignment != nil {
			for i, a := range rt.Assignment {
				for _, r := range a.Replicas {
					if !slices.Contains(brokers, r) {
						fail(kerr.InvalidReplicaAssignment, fmt.Sprintf("The manual partition assignment includes broker %d, but no such broker is registered.", r))
					}
				}
				if len(a.Replicas) == 0 {
					fail(kerr.InvalidReplicaAssignment, "The manual partition assignment includes a partition with no replicas.")
				}
				if out.ErrorCode != 0 {
					break
				}
				idx := cur + int32(i)
				parts = append(parts, raft.Partition{Index: idx, Replicas: slices.Clone(a.Replicas), ISR: slices.Clone(a.Replicas), Leader: a.Replicas[0]})
			}
		} else {
			rf := int16(len(t.Partitions[0].Replicas))
			if int(rf) > len(brokers) {
				fail(kerr.InvalidReplicationFactor, fmt.Sprintf("Unable to replicate the partition %d time(s): only %d broker(s) are registered.", rf, len(brokers)))
			} else {
				var err error
				if parts, err = assignReplicas(st, t.ID, cur, rt.Count-cur, rf); err != nil {
					fail(metaErr(err), err.Error())
				}
			}
		}
		if out.ErrorCode == 0 && !req.ValidateOnly && !mq.admit(len(parts)) {
			fail(kerr.ThrottlingQuotaExceeded, errThrottlingQuotaMsg)
		}
		if out.ErrorCode == 0 && !req.ValidateOnly {
			if _, err := b.apply(context.Background(), raft.CreatePartitions{TopicID: t.ID, Partitions: parts}); err != nil {
				fail(metaErr(err), err.Error())
			}
		}
		if out.ErrorCode == 0 {
			out.ErrorMessage = nil
		}
		resp.Topics = append(resp.Topics, out)
	}
	return now(resp)
}

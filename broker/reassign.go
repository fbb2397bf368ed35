package broker

// ElectLeaders 0-2, AlterPartitionReassignments 0-1 and
// ListPartitionReassignments 0: the operator's tools of a multi-node
// cluster (kafka-leader-election.sh, kafka-reassign-partitions.sh).
//
// The decisions are raft's pure functions (raft.ElectLeader,
// raft.ReassignCommand), computed here from the broker's raft state and
// proposed as compare-and-set commands through the raft leader; a command
// that loses a race (ErrStalePartitionEpoch) is recomputed from the newer
// state a few times. The controller (raft leader) finishes reassignments
// once every added replica is in the ISR and balances leaders
// (raft/liveness.go).
//
// ElectLeaders: PREFERRED makes Replicas[0] leader when it is live and in
// the ISR (ELECTION_NOT_NEEDED when it already leads,
// PREFERRED_LEADER_NOT_AVAILABLE otherwise); UNCLEAN elects, for a
// leaderless partition only, a live ISR member or else any live replica
// (ELECTION_NOT_NEEDED when the partition has a leader,
// ELIGIBLE_LEADERS_NOT_AVAILABLE when no replica is live). A null topic
// list means every partition, and then, as in Kafka, partitions whose
// election was not needed are left out of the response. The answer comes
// once the change is committed to the metadata log; the new leader starts
// leading when its broker applies it (Kafka waits for that too, bounded by
// TimeoutMillis).
//
// AlterPartitionReassignments (KIP-455, v1 KIP-860): a replica list starts
// or changes a reassignment, null cancels it. Errors per partition as
// Kafka: UNKNOWN_TOPIC_OR_PARTITION, INVALID_REPLICA_ASSIGNMENT (empty,
// duplicates, unregistered brokers), NO_REASSIGNMENT_IN_PROGRESS (cancel
// without one), INVALID_REPLICATION_FACTOR (v1 with
// AllowReplicationFactorChange false and a different replica count).
// ListPartitionReassignments lists the partitions being reassigned (all
// when Topics is null), with Replicas being target plus removing.
//
// ACLs as in Kafka: ElectLeaders and AlterPartitionReassignments need
// ALTER on the cluster, ListPartitionReassignments DESCRIBE on it
// (CLUSTER_AUTHORIZATION_FAILED, at the top level and for every partition
// named).
//
// Differences from Kafka: the reassignment timeout is not used (commands
// commit or fail within the broker's metadata timeout).

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/raft"
)

func init() {
	register(&kmsg.ElectLeadersRequest{}, 0, 2, (*Broker).handleElectLeaders)
	register(&kmsg.AlterPartitionAssignmentsRequest{}, 0, 1, (*Broker).handleAlterPartitionAssignments)
	register(&kmsg.ListPartitionReassignmentsRequest{}, 0, 0, (*Broker).handleListPartitionReassignments)
}

// casAttempts bounds how often a compare-and-set decision is recomputed
// after losing a race with another change of the same partition.
const casAttempts = 5

// applyComputed proposes the command compute derives from the current
// state, recomputing it when it loses a compare-and-set race. A nil
// command (nothing to do) is success. On a broker that is not the raft
// leader the local state may trail the one the command was checked
// against, so each retry waits a little longer for it to catch up.
func (b *Broker) applyComputed(ctx context.Context, compute func(st *raft.State) (raft.Command, error)) error {
	var err error
	for i := range casAttempts {
		if i > 0 {
			select {
			case <-time.After(time.Duration(i) * 20 * time.Millisecond):
			case <-b.ctx.Done():
				return errors.Join(err, b.ctx.Err())
			}
		}
		var cmd raft.Command
		if cmd, err = compute(b.node.State()); err != nil || cmd == nil {
			return err
		}
		if _, err = b.apply(ctx, cmd); !errors.Is(err, raft.ErrStalePartitionEpoch) {
			return err
		}
	}
	return err
}

// adminErr maps the controller's decision errors to Kafka errors.
func adminErr(err error) *kerr.Error {
	switch {
	case errors.Is(err, raft.ErrElectionNotNeeded):
		return kerr.ElectionNotNeeded
	case errors.Is(err, raft.ErrPreferredLeaderNotAvailable):
		return kerr.PreferredLeaderNotAvailable
	case errors.Is(err, raft.ErrEligibleLeadersNotAvailable):
		return kerr.EligibleLeadersNotAvailable
	case errors.Is(err, raft.ErrNoReassignmentInProgress):
		return kerr.NoReassignmentInProgress
	case errors.Is(err, raft.ErrUnknownPartition), errors.Is(err, raft.ErrUnknownTopic):
		return kerr.UnknownTopicOrPartition
	case errors.Is(err, raft.ErrInvalidReplicaAssignment), errors.Is(err, raft.ErrInvalidPartitionChange):
		return kerr.InvalidReplicaAssignment
	default:
		return metaErr(err)
	}
}

func (b *Broker) handleElectLeaders(rq *request, req *kmsg.ElectLeadersRequest) reply {
	resp := req.ResponseKind().(*kmsg.ElectLeadersResponse)
	if !b.authorizedCluster(rq, opAlter) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		for _, t := range req.Topics {
			rt := kmsg.NewElectLeadersResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewElectLeadersResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p, kerr.ClusterAuthorizationFailed.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return now(resp)
	}
	typ := raft.ElectPreferred
	if req.Version >= 1 {
		switch req.ElectionType {
		case 0:
		case 1:
			typ = raft.ElectUnclean
		default:
			resp.ErrorCode = kerr.InvalidRequest.Code
			return now(resp)
		}
	}
	elect := func(topic string, partition int32) error {
		return b.applyComputed(context.Background(), func(st *raft.State) (raft.Command, error) {
			tp, ok := st.Topics[topic]
			if !ok {
				return nil, raft.ErrUnknownTopic
			}
			return raft.ElectLeader(st, tp, partition, typ)
		})
	}
	result := func(partition int32, err error) kmsg.ElectLeadersResponseTopicPartition {
		rp := kmsg.NewElectLeadersResponseTopicPartition()
		rp.Partition = partition
		if err != nil {
			rp.ErrorCode = adminErr(err).Code
			rp.ErrorMessage = kmsg.StringPtr(err.Error())
		}
		return rp
	}
	if req.Topics == nil {
		// Every partition: the elections computed from one state go to
		// raft in one ApplyAll (a rolling restart can leave thousands to
		// move); those that lose a race are redone one by one.
		st := b.node.State()
		type elected struct {
			topic string
			part  int32
			cmd   raft.Command
			err   error
		}
		var all []elected
		var cmds []raft.Command
		for _, name := range st.SortedTopicNames() {
			tp := st.Topics[name]
			for _, p := range tp.Partitions {
				cmd, err := raft.ElectLeader(st, tp, p.Index, typ)
				if errors.Is(err, raft.ErrElectionNotNeeded) {
					continue
				}
				all = append(all, elected{topic: name, part: p.Index, cmd: cmd, err: err})
				if cmd != nil {
					cmds = append(cmds, cmd)
				}
			}
		}
		if len(cmds) > 0 {
			ctx, cancel := context.WithTimeout(b.ctx, metaTimeout)
			_, errs := b.node.ApplyAll(ctx, cmds)
			cancel()
			b.parts.reconcile()
			i := 0
			for j := range all {
				if all[j].cmd == nil {
					continue
				}
				all[j].err = errs[i]
				if errors.Is(errs[i], raft.ErrStalePartitionEpoch) {
					all[j].err = elect(all[j].topic, all[j].part)
				}
				i++
			}
		}
		for _, e := range all {
			if errors.Is(e.err, raft.ErrElectionNotNeeded) {
				continue // moved meanwhile: as if it had not been needed
			}
			if n := len(resp.Topics); n == 0 || resp.Topics[n-1].Topic != e.topic {
				rt := kmsg.NewElectLeadersResponseTopic()
				rt.Topic = e.topic
				resp.Topics = append(resp.Topics, rt)
			}
			rt := &resp.Topics[len(resp.Topics)-1]
			rt.Partitions = append(rt.Partitions, result(e.part, e.err))
		}
		return now(resp)
	}
	for _, t := range req.Topics {
		rt := kmsg.NewElectLeadersResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rt.Partitions = append(rt.Partitions, result(p, elect(t.Topic, p)))
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return now(resp)
}

func (b *Broker) handleAlterPartitionAssignments(rq *request, req *kmsg.AlterPartitionAssignmentsRequest) reply {
	resp := req.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	allowRFChange := req.Version < 1 || req.AllowReplicationFactorChange
	resp.AllowReplicationFactorChange = allowRFChange
	if !b.authorizedCluster(rq, opAlter) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		resp.ErrorMessage = kmsg.StringPtr(kerr.ClusterAuthorizationFailed.Description)
		for _, t := range req.Topics {
			rt := kmsg.NewAlterPartitionAssignmentsResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, kerr.ClusterAuthorizationFailed.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return now(resp)
	}
	for _, t := range req.Topics {
		rt := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			rp.Partition = p.Partition
			err := b.applyComputed(context.Background(), func(st *raft.State) (raft.Command, error) {
				if !allowRFChange && p.Replicas != nil {
					if tp, ok := st.Topics[t.Topic]; ok && p.Partition >= 0 && int(p.Partition) < len(tp.Partitions) {
						if have := len(tp.Partitions[p.Partition].OriginalReplicas()); have != len(p.Replicas) {
							return nil, ErrReplicationFactorChange
						}
					}
				}
				return raft.ReassignCommand(st, t.Topic, p.Partition, p.Replicas)
			})
			switch {
			case err == nil:
			case errors.Is(err, ErrReplicationFactorChange):
				rp.ErrorCode = kerr.InvalidReplicationFactor.Code
				rp.ErrorMessage = kmsg.StringPtr("The replication factor is changed from the current one, and AllowReplicationFactorChange is false.")
			default:
				rp.ErrorCode = adminErr(err).Code
				rp.ErrorMessage = kmsg.StringPtr(err.Error())
			}
			if rp.ErrorCode == 0 && p.Replicas != nil {
				b.log.Info("partition reassignment", "topic", t.Topic, "partition", p.Partition, "target", p.Replicas)
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return now(resp)
}

func (b *Broker) handleListPartitionReassignments(rq *request, req *kmsg.ListPartitionReassignmentsRequest) reply {
	resp := req.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	if !b.authorizedCluster(rq, opDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		resp.ErrorMessage = kmsg.StringPtr(kerr.ClusterAuthorizationFailed.Description)
		return now(resp)
	}
	st := b.node.State()
	listed := func(name string, want func(int32) bool) {
		tp, ok := st.Topics[name]
		if !ok {
			return
		}
		rt := kmsg.NewListPartitionReassignmentsResponseTopic()
		rt.Topic = name
		for i := range tp.Partitions {
			p := &tp.Partitions[i]
			if !p.Reassigning() || !want(p.Index) {
				continue
			}
			rp := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
			rp.Partition = p.Index
			rp.Replicas = slices.Clone(p.Replicas)
			rp.AddingReplicas = append([]int32{}, p.AddingReplicas...)
			rp.RemovingReplicas = append([]int32{}, p.RemovingReplicas...)
			rt.Partitions = append(rt.Partitions, rp)
		}
		if len(rt.Partitions) > 0 {
			resp.Topics = append(resp.Topics, rt)
		}
	}
	if req.Topics == nil {
		for _, name := range st.SortedTopicNames() {
			listed(name, func(int32) bool { return true })
		}
		return now(resp)
	}
	for _, t := range req.Topics {
		listed(t.Topic, func(p int32) bool { return slices.Contains(t.Partitions, p) })
	}
	return now(resp)
}

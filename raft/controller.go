package raft

import (
	"fmt"
	"slices"
)

// Controller decisions as pure functions of a State: the controller (the
// raft leader) computes the commands, proposes them with Node.ApplyAll, and
// recomputes from the new State for any that fail with
// ErrStalePartitionEpoch. Every PartitionChange produced here is a
// compare-and-set on the partition epoch seen in s, so commands computed
// from an old State can never overwrite newer decisions.

// uncleanElectionConfig is Kafka's topic (and cluster default) config that
// allows electing a replica outside the ISR.
const uncleanElectionConfig = "unclean.leader.election.enable"

// FenceCommands returns what the controller proposes when broker id's
// session expires: FenceBroker for its current epoch, then one
// PartitionChange per partition that has it as leader or in its ISR. The
// broker leaves every ISR it is in, unless it is the last member (Kafka
// keeps the last ISR member so the partition can come back without data
// loss). A partition it led gets as leader the first replica, in replica
// order, that stays in the ISR and is registered and unfenced, with leader
// epoch + 1; if there is none the partition is left without a leader (-1),
// unless unclean.leader.election.enable is "true" for the topic (or as the
// cluster default), in which case the first live replica becomes leader and
// sole ISR member. Topics are visited in name order, so the result is
// deterministic. Unknown brokers give nil.
func FenceCommands(s *State, id int32) []Command {
	b, ok := s.Brokers[id]
	if !ok {
		return nil
	}
	live := func(r int32) bool {
		rb, ok := s.Brokers[r]
		return ok && !rb.Fenced && r != id
	}
	cmds := []Command{FenceBroker{ID: id, Epoch: b.Epoch}}
	for _, name := range s.SortedTopicNames() {
		tp := s.Topics[name]
		for _, p := range tp.Partitions {
			inISR := slices.Contains(p.ISR, id)
			if !inISR && p.Leader != id {
				continue
			}
			isr := p.ISR
			if inISR && len(p.ISR) > 1 {
				isr = slices.DeleteFunc(slices.Clone(p.ISR), func(r int32) bool { return r == id })
			}
			leader := p.Leader
			if leader == id {
				leader = -1
				for _, r := range p.Replicas {
					if live(r) && slices.Contains(isr, r) {
						leader = r
						break
					}
				}
				if leader == -1 && uncleanAllowed(s, tp) {
					for _, r := range p.Replicas {
						if live(r) {
							leader, isr = r, []int32{r}
							break
						}
					}
				}
			}
			if leader == p.Leader && slices.Equal(isr, p.ISR) {
				continue // the broker is the last ISR member of a leaderless partition
			}
			epoch := p.LeaderEpoch
			if leader != p.Leader {
				epoch++
			}
			cmds = append(cmds, PartitionChange{TopicID: tp.ID, Partition: p.Index, Leader: leader, ISR: isr,
				LeaderEpoch: epoch, ExpectedPartitionEpoch: p.PartitionEpoch})
		}
	}
	return cmds
}

// UnfenceCommands returns what the controller proposes when broker id
// becomes live again (heartbeating, caught up): UnfenceBroker for its
// current epoch, then leadership (leader epoch + 1) for every leaderless
// partition whose ISR contains it. A leaderless partition that has it as a
// replica but not in the ISR gets it as leader and sole ISR member only
// when unclean.leader.election.enable is "true" (topic, else cluster
// default) and no other ISR member is registered and unfenced: that is
// unclean election, losing what only the ISR had. Rejoining the ISR of
// partitions that have a leader is the partition leader's request
// (AlterPartition), not decided here. Like FenceCommands, every
// PartitionChange is a compare-and-set on the partition epoch seen in s;
// topics are visited in name order. Unknown brokers give nil.
func UnfenceCommands(s *State, id int32) []Command {
	b, ok := s.Brokers[id]
	if !ok {
		return nil
	}
	liveOther := func(r int32) bool {
		rb, ok := s.Brokers[r]
		return ok && !rb.Fenced && r != id
	}
	cmds := []Command{UnfenceBroker{ID: id, Epoch: b.Epoch}}
	for _, name := range s.SortedTopicNames() {
		tp := s.Topics[name]
		for _, p := range tp.Partitions {
			if p.Leader != -1 || !slices.Contains(p.Replicas, id) {
				continue
			}
			isr := p.ISR
			if !slices.Contains(p.ISR, id) {
				if slices.ContainsFunc(p.ISR, liveOther) || !uncleanAllowed(s, tp) {
					continue
				}
				isr = []int32{id}
			}
			cmds = append(cmds, PartitionChange{TopicID: tp.ID, Partition: p.Index, Leader: id, ISR: isr,
				LeaderEpoch: p.LeaderEpoch + 1, ExpectedPartitionEpoch: p.PartitionEpoch})
		}
	}
	return cmds
}

func uncleanAllowed(s *State, tp *Topic) bool {
	if v, ok := tp.Configs[uncleanElectionConfig]; ok {
		return v == "true"
	}
	return s.BrokerConfigs[""][uncleanElectionConfig] == "true"
}

// liveBroker reports whether broker r is registered and unfenced.
func liveBroker(s *State, r int32) bool {
	b, ok := s.Brokers[r]
	return ok && !b.Fenced
}

// ElectionType is the kind of leader election ElectLeader performs; the
// values are Kafka's ElectLeaders election types.
type ElectionType int8

// Election types.
const (
	// ElectPreferred makes the preferred replica (Replicas[0]) leader when
	// it is live and in the ISR.
	ElectPreferred ElectionType = 0
	// ElectUnclean elects a leader for a leaderless partition: a live ISR
	// member if there is one, else any live replica (losing what only the
	// ISR had).
	ElectUnclean ElectionType = 1
)

// ElectLeader returns the PartitionChange (leader epoch + 1, compare-and-set
// on the partition epoch seen in s) that runs an election of the given type
// for partition index of tp, or why there is none:
//   - ElectPreferred: ErrElectionNotNeeded when Replicas[0] already leads,
//     ErrPreferredLeaderNotAvailable when it is fenced, unregistered or not
//     in the ISR;
//   - ElectUnclean: ErrElectionNotNeeded when the partition has a leader;
//     else the first live ISR member in replica order, else the first live
//     replica that is not being added by a reassignment (it becomes the
//     sole ISR member), else ErrEligibleLeadersNotAvailable.
//
// ErrUnknownPartition for an index tp does not have.
func ElectLeader(s *State, tp *Topic, index int32, typ ElectionType) (Command, error) {
	if index < 0 || int(index) >= len(tp.Partitions) {
		return nil, fmt.Errorf("%w: %s-%d", ErrUnknownPartition, tp.Name, index)
	}
	p := &tp.Partitions[index]
	change := func(leader int32, isr []int32) Command {
		return PartitionChange{TopicID: tp.ID, Partition: p.Index, Leader: leader, ISR: isr,
			LeaderEpoch: p.LeaderEpoch + 1, ExpectedPartitionEpoch: p.PartitionEpoch}
	}
	switch typ {
	case ElectPreferred:
		pref := p.Replicas[0]
		switch {
		case p.Leader == pref:
			return nil, fmt.Errorf("%w: %s-%d is led by its preferred replica %d", ErrElectionNotNeeded, tp.Name, index, pref)
		case !liveBroker(s, pref) || !slices.Contains(p.ISR, pref):
			return nil, fmt.Errorf("%w: %s-%d preferred replica %d", ErrPreferredLeaderNotAvailable, tp.Name, index, pref)
		}
		return change(pref, p.ISR), nil
	case ElectUnclean:
		if p.Leader != -1 {
			return nil, fmt.Errorf("%w: %s-%d has leader %d", ErrElectionNotNeeded, tp.Name, index, p.Leader)
		}
		for _, r := range p.Replicas {
			if liveBroker(s, r) && slices.Contains(p.ISR, r) {
				return change(r, p.ISR), nil
			}
		}
		for _, r := range p.Replicas {
			if liveBroker(s, r) && !slices.Contains(p.AddingReplicas, r) {
				return change(r, []int32{r}), nil
			}
		}
		return nil, fmt.Errorf("%w: %s-%d has no live replica", ErrEligibleLeadersNotAvailable, tp.Name, index)
	default:
		return nil, invalid("election type %d", typ)
	}
}

// RebalanceCommands returns the preferred-replica elections the controller
// proposes for automatic leader balancing (auto.leader.rebalance.enable):
// for every live broker that is the preferred replica of partitions it does
// not lead, when those are more than imbalancePercent percent of the
// partitions it is preferred for (leader.imbalance.per.broker.percentage,
// as Kafka computes it), one ElectLeader(ElectPreferred) for each of them
// whose preferred replica is in the ISR. Partitions being reassigned are
// left alone (completion moves their leader). Deterministic: topics in
// name order.
func RebalanceCommands(s *State, imbalancePercent int) []Command {
	total := map[int32]int{}
	off := map[int32]int{}
	names := s.SortedTopicNames()
	for _, n := range names {
		for _, p := range s.Topics[n].Partitions {
			pref := p.Replicas[0]
			total[pref]++
			if p.Leader != pref {
				off[pref]++
			}
		}
	}
	var cmds []Command
	for _, n := range names {
		tp := s.Topics[n]
		for _, p := range tp.Partitions {
			pref := p.Replicas[0]
			if p.Leader == pref || p.Reassigning() || !liveBroker(s, pref) || off[pref]*100 <= imbalancePercent*total[pref] {
				continue
			}
			if cmd, err := ElectLeader(s, tp, p.Index, ElectPreferred); err == nil {
				cmds = append(cmds, cmd)
			}
		}
	}
	return cmds
}

// ReassignCommand returns the ReassignPartition that applies an
// AlterPartitionReassignments entry to partition index of topic, computed
// from s as Kafka's controller does (KIP-455):
//   - target nil cancels: ErrNoReassignmentInProgress when none runs, else
//     the original replicas come back (ISR ∩ original; the leader moves,
//     epoch + 1, to the first live original replica in that ISR if it was
//     an added one). As in Kafka they come back in their order within
//     Replicas (the original order is not recorded), so a cancelled
//     reassignment may change the preferred leader.
//   - target set: it must be non-empty, distinct and name registered
//     brokers (ErrInvalidReplicaAssignment). Relative to the original
//     replicas, Replicas becomes target followed by the original replicas
//     not in it, AddingReplicas target minus original, RemovingReplicas
//     original minus target. When every target replica is already in the
//     ISR the reassignment completes at once (see
//     CompleteReassignmentCommands); when nothing changes it returns
//     (nil, nil).
//
// ErrUnknownTopic / ErrUnknownPartition for what s does not have.
func ReassignCommand(s *State, topic string, index int32, target []int32) (Command, error) {
	tp, ok := s.Topics[topic]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownTopic, topic)
	}
	if index < 0 || int(index) >= len(tp.Partitions) {
		return nil, fmt.Errorf("%w: %s-%d", ErrUnknownPartition, topic, index)
	}
	p := &tp.Partitions[index]
	original := p.OriginalReplicas()
	if target == nil {
		if !p.Reassigning() {
			return nil, fmt.Errorf("%w: %s-%d", ErrNoReassignmentInProgress, topic, index)
		}
		target = original
	}
	if len(target) == 0 {
		return nil, fmt.Errorf("%w: %s-%d: empty replica list", ErrInvalidReplicaAssignment, topic, index)
	}
	for i, r := range target {
		if _, ok := s.Brokers[r]; !ok {
			return nil, fmt.Errorf("%w: %s-%d: broker %d is not registered", ErrInvalidReplicaAssignment, topic, index, r)
		}
		if slices.Contains(target[:i], r) {
			return nil, fmt.Errorf("%w: %s-%d: broker %d listed twice", ErrInvalidReplicaAssignment, topic, index, r)
		}
	}
	next := *p
	next.Replicas = append(slices.Clone(target), without(original, target)...)
	next.AddingReplicas = nilIfEmpty(without(target, original))
	next.RemovingReplicas = nilIfEmpty(without(original, target))
	// Replicas leaving the assignment altogether (added ones dropped by a
	// cancel or a changed target) leave the ISR and leadership now.
	next.ISR = without(p.ISR, without(p.Replicas, next.Replicas))
	if !slices.Contains(next.ISR, next.Leader) {
		next.Leader = firstLive(s, next.Replicas, next.ISR)
	}
	if done, ok := completed(s, &next); ok {
		next = done
	}
	if slices.Equal(next.Replicas, p.Replicas) && slices.Equal(next.ISR, p.ISR) && next.Leader == p.Leader &&
		slices.Equal(next.AddingReplicas, p.AddingReplicas) && slices.Equal(next.RemovingReplicas, p.RemovingReplicas) {
		return nil, nil
	}
	return reassignCommand(tp, p, &next), nil
}

// CompleteReassignmentCommands returns, for every partition whose
// reassignment can finish (every target replica is in the ISR), the
// ReassignPartition that finishes it: Replicas = target, ISR ∩ target, no
// adding or removing, and when the leader is being removed leadership moves
// (epoch + 1) to the first live target replica in the ISR (none: -1). The
// controller proposes these whenever the ISR grows; removed brokers then
// close and delete their logs. Topics in name order.
func CompleteReassignmentCommands(s *State) []Command {
	var cmds []Command
	for _, n := range s.SortedTopicNames() {
		tp := s.Topics[n]
		for i := range tp.Partitions {
			p := &tp.Partitions[i]
			if !p.Reassigning() {
				continue
			}
			if next, ok := completed(s, p); ok {
				cmds = append(cmds, reassignCommand(tp, p, &next))
			}
		}
	}
	return cmds
}

// completed returns p with its reassignment finished, if every target
// replica is in the ISR.
func completed(s *State, p *Partition) (Partition, bool) {
	if !p.Reassigning() {
		return *p, false
	}
	target := p.TargetReplicas()
	for _, r := range target {
		if !slices.Contains(p.ISR, r) {
			return *p, false
		}
	}
	next := *p
	next.Replicas = target
	next.ISR = without(p.ISR, p.RemovingReplicas)
	next.AddingReplicas, next.RemovingReplicas = nil, nil
	if !slices.Contains(next.ISR, next.Leader) {
		next.Leader = firstLive(s, next.Replicas, next.ISR)
	}
	return next, true
}

// firstLive is the first replica, in replica order, that is in isr and
// live; -1 when there is none.
func firstLive(s *State, replicas, isr []int32) int32 {
	for _, r := range replicas {
		if slices.Contains(isr, r) && liveBroker(s, r) {
			return r
		}
	}
	return -1
}

// reassignCommand is the compare-and-set from p (as seen in s) to next,
// bumping the leader epoch when the leader changes.
func reassignCommand(tp *Topic, p, next *Partition) Command {
	epoch := p.LeaderEpoch
	if next.Leader != p.Leader {
		epoch++
	}
	return ReassignPartition{TopicID: tp.ID, Partition: p.Index, ExpectedPartitionEpoch: p.PartitionEpoch,
		Replicas: next.Replicas, ISR: next.ISR, Leader: next.Leader, LeaderEpoch: epoch,
		Adding: next.AddingReplicas, Removing: next.RemovingReplicas}
}

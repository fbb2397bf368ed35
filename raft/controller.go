package raft

import "slices"

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

// Package raft is Strom's cluster-metadata quorum: one hashicorp/raft group
// whose replicated state machine holds the brokers, the topics with their
// partitions (replicas, ISR, leader, leader epoch, partition epoch), the
// dynamic topic/broker/cluster configs, ACL bindings, SCRAM credentials, delegation tokens and
// the producer-id counter. The raft leader is the controller.
//
// # Using it
//
// Open a Node per process. Writers propose a Command with Node.Apply on any
// node: a follower forwards it to the leader over the raft port (forward.go)
// and returns once its own state includes the entry; every node applies the committed log
// to its own copy and publishes an immutable *State, read lock-free with
// Node.State and watched with Node.Subscribe (coalesced notifications).
// Domain failures (ErrTopicExists, ErrUnknownTopic, ErrStalePartitionEpoch,
// ErrStaleProducerIDBlock, ...) come back from Apply as errors matched with
// errors.Is; they are computed identically on every replica and leave the
// state unchanged. NewCreateTopic builds a CreateTopic from a CreateTopics
// request (fresh topic ID, rack-aware replica placement, PlaceReplicas).
// ApplyAll proposes many commands at once (a failover moving many
// partitions); raft then commits them in few disk writes.
//
// # Commands
//
// A command is a one-byte CommandType followed by a compact binary body
// (varints, length-prefixed strings, sorted maps), registered once in
// commandTable. Applying a command twice leaves the state as applying it
// once: creations carry their identity (topic ID, broker incarnation),
// changes are compare-and-set (partition epoch, producer-id start), and
// sets and deletes are naturally idempotent. So a client may retry after
// ErrLeadershipLost. An undecodable log entry yields an error result on
// every replica and changes nothing.
//
// # On disk
//
// DataDir/raft.db is the raft-boltdb file holding both the log and raft's
// stable store (term, vote); DataDir/snapshots/ holds file snapshots, each
// the encoded State ("strom-metadata" and a format version byte, then the
// body). Open restores the newest snapshot and replays the log after it.
//
// # Cluster shape
//
// Either every node starts with the same static Config.Voters (Kafka's
// controller.quorum.voters) and bootstraps that configuration, electing a
// leader once a majority runs; or the first node starts with
// Config.Bootstrap and becomes a one-voter cluster, and others start
// without it and are added by the leader with AddVoter (up to 5 voters) or
// AddNonvoter (every further broker, so each holds the metadata locally).
// The leader assigns the cluster id.
//
// # Controller
//
// The raft leader is the controller. Besides proposing what brokers ask
// for, with Config.BrokerSessionTimeout set it tracks broker liveness from
// Node.Heartbeat calls (liveness.go): it fences silent brokers and brokers
// shutting down (FenceCommands: leaderships move to another ISR member with
// leader epoch + 1) and unfences brokers that heartbeat again, caught up
// (UnfenceCommands). Both are pure functions of a State (controller.go).
// The operator's tools are pure functions too: ElectLeader (preferred and
// unclean elections, Kafka's ElectLeaders), ReassignCommand (KIP-455
// partition reassignment: start, change or cancel, recorded with the
// ReassignPartition command as adding/removing replica lists) and, run by
// the controller on its tick, CompleteReassignmentCommands (finish a
// reassignment once every target replica is in the ISR) and, every
// Config.LeaderImbalanceCheckInterval, RebalanceCommands (move leaderships
// back to preferred replicas, Kafka's auto.leader.rebalance.enable).
package raft

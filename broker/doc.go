// Package broker is Strom's Kafka protocol server: the listener and connections,
// request framing and dispatch, one file per Kafka API family, and the partition
// replicas (logs, high watermark, fetch waiters) hosted by this node.
//
// Cluster metadata (brokers, topics, partitions, configs, producer-id blocks)
// lives in the raft state machine (package raft); partition data lives in one
// storage.Log per partition (package storage). The broker owns the glue: it
// turns requests into raft commands and log operations and maps their errors to
// Kafka error codes (package kerr).
//
// A cluster of several brokers shares one raft group: every broker is a voter
// listed in Config.Voters. Any broker applies metadata changes (package raft
// forwards them to the leader), and the raft leader acts as the controller of
// broker liveness: brokers heartbeat it, register fenced and serve once it
// unfences them, and refuse partition leadership while fenced or out of
// touch with it (liveness.go). Partition data is replicated Kafka-style
// (replica.go, replica_fetcher.go), and consumers may read from a replica
// in their rack (follower_read.go, KIP-392); the operator's tools, leader
// elections and partition reassignment (reassign.go), are decided by raft's
// pure controller functions and applied as compare-and-set commands.
//
// The group coordinator (coordinator.go, groups.go, offsets.go,
// consumer_groups.go; state machines in broker/group) keeps consumer groups
// and committed offsets in the internal compacted topic __consumer_offsets,
// in Kafka's record schemas, and rebuilds them by replaying it.
//
// Every API handler file registers its version range next to the handler in an
// init function, so the ApiVersions answer is derived from the handlers and
// cannot drift from them.
package broker

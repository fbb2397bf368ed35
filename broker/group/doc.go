// Package group is the state machine of one consumer group of Kafka's classic
// group protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) plus the
// group's committed offsets, with the semantics of Apache Kafka's
// ClassicGroup and GroupMetadataManager.
//
// The package does no I/O and reads no clock: every operation takes the
// current time, and timers (session timeouts, the rebalance timeout, the
// initial rebalance delay, the sync timeout, pending member-id timeouts) fire
// only when the owner calls Tick. Answers that Kafka delays (a JoinGroup held
// until the rebalance completes, a follower's SyncGroup held until the leader
// sends the assignment) are delivered through callbacks, which run
// synchronously inside whatever call completes them (Join, Sync, Leave,
// Tick). Callbacks must not call back into the Group.
//
// A group may instead use the consumer protocol of KIP-848 (consumer.go),
// where the coordinator assigns partitions itself; its state is persisted as
// Kafka's consumer-group records (records.go, persist.go).
//
// Ownership: a Group is not safe for concurrent use; its owner (the broker's
// coordinator shard) serializes every call under one mutex. After each call
// the owner checks TakeDirty and, when set, persists Snapshot, and appends
// the records ConsumerRecords returns, before it releases the held answers
// to clients, so an assignment is acknowledged only after the group metadata
// that carries it is durable.
package group

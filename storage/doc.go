// Package storage is the segmented log of one Kafka partition: record batches stored exactly as they
// travel on the wire, in Kafka's own on-disk layout, so Kafka's tools (kafka-dump-log) read it.
//
// # Layout of a partition directory
//
//	00000000000000000000.log        v2 record batches, unchanged; the name is the segment's base offset
//	00000000000000000000.index      sparse offset index: 8-byte entries (int32 offset relative to the
//	                                base: the last offset of a batch, int32 byte position of that batch),
//	                                one per index.interval.bytes (4 KiB) of log
//	00000000000000000000.timeindex  12-byte entries (int64 max timestamp so far, int32 relative offset
//	                                of the batch that reached it)
//	leader-epoch-checkpoint         Kafka's text format: version, count, "epoch startOffset" lines
//	<20-digit offset>.snapshot      producer state (idempotence/transactions) as of that offset
//	strom-checkpoint                log start offset, high watermark, recovery point
//	.strom-clean-shutdown           present only after a clean Close until the next write
//
// # Concurrency
//
// One writer at a time: the caller serializes Append, TruncateTo, DeleteRecordsBefore and AssignEpoch.
// EnforceRetention and Compact may run beside it (they take the writer lock only briefly). Readers
// never take a lock: the segment list and each segment's indexes are immutable snapshots published
// through atomic pointers, and a Slice holds a reference on its file, so a segment deleted by retention
// or replaced by compaction stays readable until the Slice is released.
//
// # Durability
//
// Append returns after write(2). Sync waits for durability according to the fsync policy; with
// FsyncAlways concurrent waiters share one fdatasync (group commit). Everything below the recovery
// point is on stable storage. After an unclean stop, Open scans from the segment holding the recovery
// point, verifies each batch's length and CRC-32C, truncates a torn or corrupt tail and rebuilds those
// segments' indexes only; a clean Close leaves a marker so the next Open reads almost nothing. Index
// files are never trusted blindly: they are loaded lazily, sanity-checked, and rebuilt from the log when
// wrong.
package storage

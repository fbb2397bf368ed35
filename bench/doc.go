// Package bench generates load against any Kafka-protocol cluster (Apache Kafka, Strom, a managed
// service) and measures it: `strom bench produce|consume|e2e` is a thin flag layer over Run.
//
// Latency is recorded in an HDR histogram (microsecond resolution, 3 significant digits). At a fixed
// rate every record has an intended send time on a fixed schedule and its latency is measured from that
// time, not from when the client got around to sending it, so a stalled broker shows up in the tail
// instead of silently lowering the offered load (coordinated omission). At the maximum rate there is no
// schedule and latency is measured from the Produce call.
//
// bench/compare holds the side-by-side runner against Apache Kafka (`make bench-compare`).
package bench

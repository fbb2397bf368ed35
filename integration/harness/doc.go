// Package harness starts real clusters for Strom's end-to-end tests: Apache Kafka (KRaft, combined
// controller+broker, jars resolved from Maven Central by integration/kafka/fetch.sh) and Strom itself
// (the `strom serve` binary), both as local processes listening on 127.0.0.1 only.
//
// Both kinds satisfy [Cluster], so a scenario is written once and runs against Kafka and Strom alike.
// Node indexes passed to Kill and Restart are 0-based; node i has broker id i+1.
//
// Processes are owned by the cluster value that started them: Stop (or the t.Cleanup registered by
// StartKafka/StartStrom, or Pool.Close) ends them, Kill sends SIGKILL to the PID we started and nothing
// else, and on Linux every child also gets SIGKILL when the test binary dies (Pdeathsig), so a test
// killed by its timeout leaves no JVM behind.
package harness

// Package integration holds Strom's end-to-end tests: real Apache Kafka and real `strom serve`
// processes (started by package harness) driven by real clients. Scenarios are written once against
// harness.Cluster and run against every target.
package integration

import (
	"fmt"
	"os"
	"testing"

	"github.com/stromhq/strom/integration/harness"
)

// pool holds the single-node clusters shared by the tests of this package: one JVM start per target per
// `go test` run, not per test. Tests that kill nodes start their own clusters.
var pool harness.Pool

// helperMains are programs the test binary runs instead of its tests when the environment variable
// STROM_TEST_HELPER names one (the program gets os.Args[1:] and its result is the exit code): client
// processes a test must be able to SIGKILL, for clients that only exist as Go libraries
// (confluent-kafka-go). Registered from init functions.
var helperMains = map[string]func(args []string) int{}

func TestMain(m *testing.M) {
	if name := os.Getenv("STROM_TEST_HELPER"); name != "" {
		main, ok := helperMains[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "integration: unknown STROM_TEST_HELPER %q\n", name)
			os.Exit(2)
		}
		os.Exit(main(os.Args[1:]))
	}
	code := m.Run()
	if err := pool.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "integration: closing clusters:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// stromBinary is the strom binary tests run as a process: STROM_BIN, or the harness's build of this
// checkout (kept per module root, so another worktree's build cannot replace it).
func stromBinary(t *testing.T) string {
	t.Helper()
	p, err := harness.StromBinary()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// target is one kind of cluster a scenario runs against.
type target struct {
	name string
	// kafkaVersion is the Kafka release whose tools and clients pair with this target.
	kafkaVersion string
	start        func(t testing.TB) harness.Cluster
}

// clusters lists the shared single-node targets: Apache Kafka 4.x and 3.9, and Strom. The Strom target
// fails ("strom serve not available: ...") rather than skipping while the binary cannot serve, so a
// missing broker is never mistaken for a passing suite.
func clusters() []target {
	return []target{
		{"kafka-" + harness.DefaultKafkaVersion, harness.DefaultKafkaVersion, func(t testing.TB) harness.Cluster {
			return pool.Kafka(t, "single-"+harness.DefaultKafkaVersion)
		}},
		{"kafka-" + harness.Kafka39Version, harness.Kafka39Version, func(t testing.TB) harness.Cluster {
			return pool.Kafka(t, "single-"+harness.Kafka39Version, harness.KafkaVersion(harness.Kafka39Version))
		}},
		{"strom", harness.DefaultKafkaVersion, func(t testing.TB) harness.Cluster {
			return pool.Strom(t, "single")
		}},
	}
}

// clusters3 lists three-node targets for fault tests; each test starts its own, since it kills nodes.
func clusters3() []target {
	return []target{
		{"kafka-" + harness.DefaultKafkaVersion, harness.DefaultKafkaVersion, func(t testing.TB) harness.Cluster {
			return harness.StartKafka(t, harness.Nodes(3))
		}},
		{"strom", harness.DefaultKafkaVersion, func(t testing.TB) harness.Cluster {
			return harness.StartStrom(t, harness.Nodes(3))
		}},
	}
}

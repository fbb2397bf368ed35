//go:build matrix

package clients

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stromhq/strom/integration/harness"
)

// TestMatrixHarness starts Apache Kafka (harness.DefaultKafkaVersion) and a single-node Strom with the
// integration harness, runs every client against both, and prints the client × feature × cluster matrix.
// Kafka must pass every feature the client supports: it is the reference, so a failure there is a runner
// bug. Strom's failures are reported in the matrix and fail the test too.
//
//	go test -tags matrix -run TestMatrixHarness -v -timeout 20m ./integration/clients
//
// $STROM_TEST_CLIENTS (comma-separated) limits the clients; $STROM_MATRIX_OUT also writes the matrix there;
// $STROM_MATRIX_CLUSTERS (comma-separated among "kafka", "kafka39" and "strom"; default "kafka,strom")
// picks the clusters: kafka39 is Kafka 3.9.x, whose CLI tools still take the pre-4.1 flag names.
func TestMatrixHarness(t *testing.T) {
	java, err := harness.Java()
	if err != nil {
		t.Fatalf("java for Kafka: %v", err)
	}
	clients := Clients()
	if only := os.Getenv("STROM_TEST_CLIENTS"); only != "" {
		clients = strings.Split(only, ",")
	}
	clusters := []string{"kafka", "strom"}
	if only := os.Getenv("STROM_MATRIX_CLUSTERS"); only != "" {
		clusters = strings.Split(only, ",")
	}

	results := make(map[string][]Result)
	for _, name := range clusters {
		t.Run(name, func(t *testing.T) {
			// The java and kafka-cli runners use the jars of the Kafka release under test, and the default
			// release's against Strom.
			version := harness.DefaultKafkaVersion
			var c *harness.LocalCluster
			switch name {
			case "kafka":
				c = harness.StartKafka(t)
				name = "kafka-" + version
			case "kafka39":
				version = harness.Kafka39Version
				c = harness.StartKafka(t, harness.KafkaVersion(version))
				name = "kafka-" + version
			case "strom":
				c = harness.StartStrom(t)
			default:
				t.Fatalf("unknown cluster %q (kafka, kafka39, strom)", name)
			}
			libs, err := harness.KafkaLibs(version)
			if err != nil {
				t.Fatalf("Kafka %s jars: %v", version, err)
			}
			for _, client := range clients {
				t.Run(client, func(t *testing.T) {
					start := time.Now()
					rs, err := Run(context.Background(), client, c.Bootstrap(), WithKafkaLibs(libs), WithJava(java))
					if err != nil {
						t.Fatalf("runner: %v", err)
					}
					t.Logf("%s against %s: %v", client, name, time.Since(start).Round(time.Millisecond))
					for _, r := range rs {
						if r.Outcome == Fail {
							t.Errorf("%v", r)
						}
					}
					results[name] = append(results[name], rs...)
				})
			}
		})
	}

	var b bytes.Buffer
	if err := WriteMatrix(&b, results); err != nil {
		t.Fatal(err)
	}
	t.Logf("matrix:\n%s", b.String())
	if out := os.Getenv("STROM_MATRIX_OUT"); out != "" {
		if err := os.WriteFile(out, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

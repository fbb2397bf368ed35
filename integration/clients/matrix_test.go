//go:build matrix

package clients

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMatrixAgainstBootstrap runs every client's scenario against the cluster at $STROM_TEST_BOOTSTRAP and
// fails on any failed feature. It needs every client installed (see the package comment) and is kept out of
// plain `go test` by the matrix build tag:
//
//	STROM_TEST_BOOTSTRAP=127.0.0.1:9092 go test -tags matrix -run TestMatrixAgainstBootstrap -v ./integration/clients
//
// $STROM_TEST_CLUSTER names the column of the printed matrix (default "cluster"); $STROM_TEST_CLIENTS
// (comma-separated) limits the clients; $STROM_MATRIX_OUT also writes the markdown matrix to that file.
func TestMatrixAgainstBootstrap(t *testing.T) {
	bootstrap := os.Getenv("STROM_TEST_BOOTSTRAP")
	if bootstrap == "" {
		t.Fatal("STROM_TEST_BOOTSTRAP is not set: start a Kafka-protocol cluster and run\n" +
			"  STROM_TEST_BOOTSTRAP=HOST:PORT go test -tags matrix -run TestMatrixAgainstBootstrap -v ./integration/clients\n" +
			"(Kafka jars for the java and kafka-cli runners: STROM_KAFKA_LIBS or integration/kafka/fetch.sh)")
	}
	cluster := os.Getenv("STROM_TEST_CLUSTER")
	if cluster == "" {
		cluster = "cluster"
	}
	clients := Clients()
	if only := os.Getenv("STROM_TEST_CLIENTS"); only != "" {
		clients = strings.Split(only, ",")
	}

	var all []Result
	for _, c := range clients {
		t.Run(c, func(t *testing.T) {
			start := time.Now()
			rs, err := Run(context.Background(), c, bootstrap)
			if err != nil {
				t.Fatalf("runner: %v", err)
			}
			t.Logf("%s: %v", c, time.Since(start).Round(time.Millisecond))
			for _, r := range rs {
				if r.Outcome == Fail {
					t.Errorf("%v", r)
				} else {
					t.Logf("%v", r)
				}
			}
			all = append(all, rs...)
		})
	}

	var b bytes.Buffer
	if err := WriteMatrix(&b, map[string][]Result{cluster: all}); err != nil {
		t.Fatal(err)
	}
	t.Logf("matrix:\n%s", b.String())
	if out := os.Getenv("STROM_MATRIX_OUT"); out != "" {
		if err := os.WriteFile(out, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stromhq/strom/bench"
	"github.com/stromhq/strom/integration/harness"
)

// TestBenchAgainstClusters runs `strom bench` (package bench) against every shared single-node target and
// a three-node Strom cluster, whose partitions have three different leaders: both load generators
// produce, and a consume run reads back exactly what they reported acknowledged. It proves the tool
// measures any Kafka-protocol cluster, and that the lean producer's hand-stamped batches (sequences
// continued across requests, a last batch cut short, one connection per leader) are accepted and
// readable as a full client's are, and that the lean consumer counts what franz-go does.
func TestBenchAgainstClusters(t *testing.T) {
	t.Parallel()
	targets := append(clusters(), target{name: "strom-3-nodes", start: func(t testing.TB) harness.Cluster {
		return harness.StartStrom(t, harness.Nodes(3))
	}})
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			c := tg.start(t)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cfg := bench.DefaultConfig()
			cfg.Brokers = strings.Split(c.Bootstrap(), ",")
			cfg.Topic = fmt.Sprintf("bench-%d", time.Now().UnixNano())
			cfg.Partitions = 6
			cfg.RecordSize = 300
			cfg.Duration = 2 * time.Minute // a bound only: --records ends each run
			runs := []struct {
				name    string
				mode    bench.Mode
				mod     func(*bench.Config)
				records int64
			}{
				// First, on the topic it creates: a leader Kafka has just named may refuse writes for a
				// moment, which the lean producer must wait out. About 3,300 300-byte records fill a
				// batch: each lean producer primes every partition with one record, sends a full request
				// of six batches and then a shorter one.
				{"lean", bench.ModeProduce, func(c *bench.Config) { c.Records = 50000; c.Producers = 2; c.Client = bench.ClientLean }, 50000},
				{"franz-go", bench.ModeProduce, func(c *bench.Config) { c.Records = 5000; c.Producers = 2 }, 5000},
				{"consume", bench.ModeConsume, func(c *bench.Config) { c.Consumers = 3; c.Duration = 0 }, 55000},
				// The lean consumer walks the same batches itself, from every leader.
				{"consume lean", bench.ModeConsume, func(c *bench.Config) { c.Consumers = 2; c.Duration = 0; c.Client = bench.ClientLean }, 55000},
			}
			for _, run := range runs {
				rc := cfg
				run.mod(&rc)
				res, err := bench.Run(ctx, run.mode, rc)
				if err != nil {
					t.Fatalf("%s: %v", run.name, err)
				}
				if res.Errors != 0 || res.Records != run.records || res.Bytes != run.records*300 {
					t.Fatalf("%s: %d records, %d bytes, %d errors (%s); want %d records of 300 bytes, no errors",
						run.name, res.Records, res.Bytes, res.Errors, res.FirstError, run.records)
				}
				if run.mode == bench.ModeProduce && (res.Produce == nil || res.Produce.Count != run.records) {
					t.Fatalf("%s: produce latency %+v, want %d samples", run.name, res.Produce, run.records)
				}
				t.Logf("%s: %.0f records/s", run.name, res.RecordsPerSec)
			}
		})
	}
}

// benchRoundTrip runs `strom bench` against bootstrap with the Kafka client properties file props (TLS,
// SASL): the lean producer and franz-go each produce, and a franz-go and a lean consume run each read back
// what they reported acknowledged.
func benchRoundTrip(ctx context.Context, t *testing.T, bootstrap, props string) {
	t.Helper()
	cfg := bench.DefaultConfig()
	cfg.Brokers = strings.Split(bootstrap, ",")
	cfg.Conn.ConfigFile = props
	cfg.Topic = uniqueName("bench")
	cfg.Partitions = 2
	cfg.RecordSize = 100
	cfg.Duration = time.Minute // a bound only: --records ends each run
	for _, run := range []struct {
		mode    bench.Mode
		client  string
		records int64
	}{{bench.ModeProduce, bench.ClientLean, 20000}, {bench.ModeProduce, bench.ClientFranzGo, 3000}, {bench.ModeConsume, bench.ClientFranzGo, 23000},
		{bench.ModeConsume, bench.ClientLean, 23000}} {
		rc := cfg
		rc.Client = run.client
		if run.mode == bench.ModeProduce {
			rc.Records = run.records
		} else {
			rc.Duration = 0
		}
		res, err := bench.Run(ctx, run.mode, rc)
		if err != nil {
			t.Fatalf("bench %s --client %s: %v", run.mode, run.client, err)
		}
		if res.Errors != 0 || res.Records != run.records {
			t.Fatalf("bench %s --client %s: %d records, %d errors (%s); want %d", run.mode, run.client, res.Records, res.Errors,
				res.FirstError, run.records)
		}
	}
}

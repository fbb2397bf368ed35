package bench_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/bench"
	"github.com/stromhq/strom/broker"
)

// startBroker runs an in-process single-node Strom with its default durability (fsync before acks=all
// answers), closed when the test ends.
func startBroker(t testing.TB) string {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.RaftListen = "127.0.0.1:0"
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := broker.Start(cfg)
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close broker: %v", err)
		}
	})
	return b.Addr()
}

func TestRunAgainstStrom(t *testing.T) {
	addr := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := bench.DefaultConfig()
	base.Brokers = []string{addr}
	base.Partitions = 4
	base.RecordSize = 200
	base.Duration = 60 * time.Second // a bound only: --records ends each run

	tests := []struct {
		name     string
		mode     bench.Mode
		mod      func(*bench.Config)
		records  int64 // acknowledged (produce, e2e) or consumed records expected
		produce  bool  // produce latency expected
		e2e      bool  // e2e latency expected
		consumed int64 // e2e: records read back
	}{
		{name: "produce acks=all", mode: bench.ModeProduce, mod: func(c *bench.Config) { c.Records = 3000; c.Producers = 2 },
			records: 3000, produce: true},
		{name: "produce acks=1 lz4 at a rate", mode: bench.ModeProduce,
			mod:     func(c *bench.Config) { c.Records = 500; c.Acks = "1"; c.Compression = "lz4"; c.Rate = 2000 },
			records: 500, produce: true},
		// 20,000 records per producer: a full request of 4 batches (each about 4,600 200-byte records),
		// then one partial batch, so sequences continue across requests and a batch can be cut short.
		{name: "produce lean acks=all", mode: bench.ModeProduce,
			mod:     func(c *bench.Config) { c.Records = 40000; c.Producers = 2; c.Client = bench.ClientLean },
			records: 40000, produce: true},
		{name: "produce lean acks=1", mode: bench.ModeProduce,
			mod:     func(c *bench.Config) { c.Records = 1001; c.Acks = "1"; c.Client = bench.ClientLean },
			records: 1001, produce: true},
		// Reads everything the produce runs wrote, with two consumers splitting the partitions: the
		// lean producer's batches are whole and readable.
		{name: "consume", mode: bench.ModeConsume, mod: func(c *bench.Config) { c.Consumers = 2; c.Duration = 0 },
			records: 3500 + 40000 + 1001},
		{name: "consume in two passes", mode: bench.ModeConsume,
			mod:     func(c *bench.Config) { c.Consumers = 2; c.Duration = 0; c.Passes = 2 },
			records: 2 * (3500 + 40000 + 1001)},
		// The lean consumer reads uncompressed data only: a topic of its own, written by both producers
		// (franz-go's small batches and the lean producer's full ones), read by two lean consumers.
		{name: "produce to the lean topic", mode: bench.ModeProduce, mod: func(c *bench.Config) { c.Topic = "lean"; c.Records = 700 },
			records: 700, produce: true},
		{name: "produce lean to the lean topic", mode: bench.ModeProduce,
			mod: func(c *bench.Config) {
				c.Topic = "lean"
				c.Records = 30000
				c.Producers = 2
				c.Client = bench.ClientLean
			},
			records: 30000, produce: true},
		{name: "consume lean", mode: bench.ModeConsume,
			mod:     func(c *bench.Config) { c.Topic = "lean"; c.Consumers = 2; c.Duration = 0; c.Client = bench.ClientLean },
			records: 30700},
		{name: "consume lean in three passes", mode: bench.ModeConsume,
			mod: func(c *bench.Config) {
				c.Topic, c.Consumers, c.Duration, c.Client, c.Passes = "lean", 2, 0, bench.ClientLean, 3
			},
			records: 3 * 30700},
		{name: "e2e at a rate", mode: bench.ModeE2E, mod: func(c *bench.Config) { c.Records = 400; c.Rate = 1000 },
			records: 400, produce: true, e2e: true, consumed: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			tt.mod(&cfg)
			if tt.mode == bench.ModeConsume {
				// acks=1 records become visible once the broker's background fsync moved the high watermark.
				waitEndOffsets(t, ctx, addr, cfg.Topic, tt.records/int64(max(cfg.Passes, 1)))
				cfg.RecordSize = 7 // a produce setting: a consume run reports the size of what it read
			}
			res, err := bench.Run(ctx, tt.mode, cfg)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if res.Errors != 0 || res.Records != tt.records || res.Partitions != 4 {
				t.Fatalf("result: %d records, %d partitions, %d errors (%s); want %d records, 4 partitions, no errors",
					res.Records, res.Partitions, res.Errors, res.FirstError, tt.records)
			}
			if res.Bytes != tt.records*200 || res.RecordsPerSec <= 0 || res.MBPerSec <= 0 {
				t.Errorf("throughput: %d bytes, %v rec/s, %v MB/s", res.Bytes, res.RecordsPerSec, res.MBPerSec)
			}
			if (res.Produce != nil) != tt.produce || (res.E2E != nil) != tt.e2e {
				t.Errorf("latency summaries: produce %v e2e %v; want %v %v", res.Produce, res.E2E, tt.produce, tt.e2e)
			}
			if want := max(cfg.Passes, 1); tt.mode == bench.ModeConsume && (res.Passes != want || res.RecordSize != 200) {
				t.Errorf("result: %d passes, records of %d bytes; want %d passes of 200-byte records", res.Passes, res.RecordSize, want)
			}
			if res.Produce != nil && res.Produce.Count != tt.records {
				t.Errorf("produce latency has %d samples, want %d", res.Produce.Count, tt.records)
			}
			if tt.e2e && (res.Consumed != tt.consumed || res.E2E.Count != tt.consumed) {
				t.Errorf("e2e consumed %d, %d latency samples; want %d", res.Consumed, res.E2E.Count, tt.consumed)
			}
		})
	}

	t.Run("lean consume of compressed batches", func(t *testing.T) {
		cfg := base
		cfg.Client, cfg.Duration = bench.ClientLean, 0
		_, err := bench.Run(ctx, bench.ModeConsume, cfg)
		if err == nil || !strings.Contains(err.Error(), "uncompressed batches only") {
			t.Fatalf("Run: %v, want the lean consumer to refuse the lz4 batches", err)
		}
	})

	t.Run("consume of an empty topic", func(t *testing.T) {
		cfg := base
		cfg.Topic = "empty"
		_, err := bench.Run(ctx, bench.ModeConsume, cfg)
		if !errors.Is(err, bench.ErrNothingToConsume) {
			t.Fatalf("Run: %v, want ErrNothingToConsume", err)
		}
	})
}

// waitEndOffsets waits (bounded) until the topic's end offsets add up to want.
func waitEndOffsets(t *testing.T, ctx context.Context, addr, topic string, want int64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var sum int64
	for range 100 {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			t.Fatalf("list end offsets: %v", err)
		}
		sum = 0
		ends.Each(func(o kadm.ListedOffset) { sum += o.Offset })
		if sum == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("end offsets of %s add up to %d, want %d", topic, sum, want)
}

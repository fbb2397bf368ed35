package bench_test

import (
	"context"
	"testing"
	"time"

	"github.com/stromhq/strom/bench"
)

// These benchmarks run Strom in-process under `strom bench` load so the broker can be profiled without a
// pprof endpoint in `strom serve`:
//
//	go test -run '^$' -bench StromProduce -benchtime 300000x -cpuprofile cpu.out -memprofile mem.out ./bench
//	go tool pprof -top -focus 'stromhq/strom/(broker|storage)' bench.test cpu.out
//
// The profile holds the client too (same process); focus on broker and storage frames. b.N is the
// number of records, so ns/op is the cost of one record end to end.

func benchConfig(b *testing.B, addr, topic string, size int) bench.Config {
	cfg := bench.DefaultConfig()
	cfg.Brokers = []string{addr}
	cfg.Topic = topic
	cfg.RecordSize = size
	cfg.Records = int64(b.N)
	cfg.Duration = 10 * time.Minute // a bound only: Records ends the run
	return cfg
}

func reportResult(b *testing.B, res *bench.Result) {
	b.ReportMetric(res.RecordsPerSec, "records/s")
	if res.Produce != nil {
		b.ReportMetric(res.Produce.P99, "p99-ms")
	}
	if res.Errors > 0 {
		b.Fatalf("%d errors, first: %s", res.Errors, res.FirstError)
	}
}

// BenchmarkStromProduce: 1 KiB records, 8 partitions, acks=all (idempotent), fsync=always.
func BenchmarkStromProduce(b *testing.B) {
	for _, size := range []int{1024, 100} {
		b.Run(map[int]string{1024: "1KiB", 100: "100B"}[size], func(b *testing.B) {
			addr := startBroker(b)
			cfg := benchConfig(b, addr, "produce", size)
			b.SetBytes(int64(size))
			b.ResetTimer()
			res, err := bench.Run(context.Background(), bench.ModeProduce, cfg)
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			reportResult(b, res)
		})
	}
}

// BenchmarkStromConsume: reads b.N 1 KiB records written (untimed) just before.
func BenchmarkStromConsume(b *testing.B) {
	addr := startBroker(b)
	cfg := benchConfig(b, addr, "consume", 1024)
	if _, err := bench.Run(context.Background(), bench.ModeProduce, cfg); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(1024)
	b.ResetTimer()
	res, err := bench.Run(context.Background(), bench.ModeConsume, cfg)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	reportResult(b, res)
}

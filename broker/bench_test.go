package broker

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkProduce measures kgo producing 100-byte records (idempotent,
// snappy default batches) into an in-process broker; b.N records.
func BenchmarkProduce(b *testing.B) {
	for _, fsync := range []string{"never", "always"} {
		b.Run("fsync="+fsync, func(b *testing.B) {
			br := startTestBroker(b, func(c *Config) { c.Fsync = fsync })
			createTopic(b, newAdmin(b, br), "bench", 4, nil)
			cl := newClient(b, br, kgo.DefaultProduceTopic("bench"), kgo.ProducerLinger(5*time.Millisecond), kgo.RequiredAcks(kgo.AllISRAcks()))
			val := make([]byte, 100)
			var wg sync.WaitGroup
			var errOnce sync.Once
			var firstErr error
			b.SetBytes(100)
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				wg.Add(1)
				cl.Produce(context.Background(), &kgo.Record{Value: val}, func(_ *kgo.Record, err error) {
					if err != nil {
						errOnce.Do(func() { firstErr = err })
					}
					wg.Done()
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
			if firstErr != nil {
				b.Fatal(firstErr)
			}
		})
	}
}

// BenchmarkConsume measures kgo consuming b.N 100-byte records that were
// produced beforehand.
func BenchmarkConsume(b *testing.B) {
	br := startTestBroker(b, nil)
	createTopic(b, newAdmin(b, br), "bench", 4, nil)
	cl := newClient(b, br, kgo.DefaultProduceTopic("bench"), kgo.ProducerLinger(5*time.Millisecond))
	val := make([]byte, 100)
	for i := 0; i < b.N; i++ {
		cl.Produce(context.Background(), &kgo.Record{Value: val}, nil)
	}
	if err := cl.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(100)
	b.ResetTimer()
	start := time.Now()
	cons := newClient(b, br, kgo.ConsumeTopics("bench"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	n := 0
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for n < b.N {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			b.Fatal(fmt.Sprintf("consumed %d of %d", n, b.N))
		}
		n += fs.NumRecords()
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
}

// BenchmarkReadFrame measures reading one request frame of the size a
// franz-go producer sends under load (~5.6 MB: 8 partitions of 1 KiB
// records), plus a small one, with and without recycling; B/op is the
// allocation per frame.
func BenchmarkReadFrame(b *testing.B) {
	for _, recycle := range []bool{false, true} {
		for _, size := range []int{4 << 10, 5_600_000} {
			b.Run(fmt.Sprintf("recycle=%v/%d", recycle, size), func(b *testing.B) {
				data := make([]byte, size)
				r := bytes.NewReader(data)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					r.Reset(data)
					frame, err := readFrame(r, size, recycle)
					if err != nil {
						b.Fatal(err)
					}
					if recycle {
						recycledFrames.put(frame)
					}
				}
			})
		}
	}
}

// BenchmarkTxnCommit measures one kgo transactional producer committing
// b.N transactions of 10 100-byte records over 2 partitions (transaction
// version 2: implicit adds, EndTxn with epoch bump, markers written and
// synced before EndTxn answers).
func BenchmarkTxnCommit(b *testing.B) {
	for _, fsync := range []string{"never", "always"} {
		b.Run("fsync="+fsync, func(b *testing.B) {
			br := startTestBroker(b, func(c *Config) { c.Fsync = fsync; c.TransactionTopicPartitions = 3 })
			createTopic(b, newAdmin(b, br), "bench", 2, nil)
			cl := newClient(b, br, kgo.TransactionalID("bench-tx"), kgo.DefaultProduceTopic("bench"),
				kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
			ctx := context.Background()
			val := make([]byte, 100)
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if err := cl.BeginTransaction(); err != nil {
					b.Fatal(err)
				}
				var perr error
				var mu sync.Mutex
				for j := 0; j < 10; j++ {
					cl.Produce(ctx, &kgo.Record{Value: val}, func(_ *kgo.Record, err error) {
						mu.Lock()
						if err != nil && perr == nil {
							perr = err
						}
						mu.Unlock()
					})
				}
				// kgo requires the transaction's records to be flushed
				// before it ends.
				if err := cl.Flush(ctx); err != nil || perr != nil {
					b.Fatalf("transaction %d: flush %v, produce %v", i, err, perr)
				}
				if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
					b.Fatalf("transaction %d: %v (%s)", i, err, br.txns.describeTxnForTest("bench-tx"))
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "txn/s")
		})
	}
}

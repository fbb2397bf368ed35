package storage

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// benchBatch builds a batch of 1 KiB records totalling about size bytes.
func benchBatch(size int) []byte {
	n := max(1, size/1024)
	recs := make([]Record, n)
	val := make([]byte, 1000)
	for i := range recs {
		recs[i] = Record{OffsetDelta: int32(i), Key: []byte(fmt.Sprintf("key-%06d", i)), Value: val}
	}
	return BuildBatch(BatchHeader{LastOffsetDelta: int32(n - 1), BaseTimestamp: 1, MaxTimestamp: 1,
		ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, recs)
}

var (
	diskOnce sync.Once
	diskBW   float64 // bytes per second, sequential 1 MiB writes + one fdatasync
)

// diskBandwidth measures the disk's own sequential write bandwidth like
// `dd if=/dev/zero of=<tmp> bs=1M count=512 conv=fdatasync`, once per process.
func diskBandwidth(tb testing.TB) float64 {
	diskOnce.Do(func() {
		dir, err := os.MkdirTemp("", "strom-disk-bw")
		if err != nil {
			tb.Fatal(err)
		}
		defer os.RemoveAll(dir)
		f, err := os.Create(filepath.Join(dir, "dd"))
		if err != nil {
			tb.Fatal(err)
		}
		defer f.Close()
		buf := make([]byte, 1<<20)
		const count = 512
		start := time.Now()
		for range count {
			if _, err := f.Write(buf); err != nil {
				tb.Fatal(err)
			}
		}
		if err := fdatasync(f); err != nil {
			tb.Fatal(err)
		}
		diskBW = float64(count<<20) / time.Since(start).Seconds()
	})
	return diskBW
}

// BenchmarkDiskBandwidth reports the raw sequential write bandwidth the append figures compare with.
func BenchmarkDiskBandwidth(b *testing.B) {
	for b.Loop() {
		bw := diskBandwidth(b)
		b.ReportMetric(bw/1e6, "disk-MB/s")
	}
}

// BenchmarkAppend measures append throughput with 1 KiB records per fsync policy and batch size.
// "always" acknowledges every append after its own Sync (one producer, acks=all); "always-group"
// keeps up to 16 Syncs in flight from concurrent waiters, so group commit shares fsyncs between them.
// The disk-ratio metric is append MB/s divided by the disk's dd-style bandwidth.
func BenchmarkAppend(b *testing.B) {
	for _, size := range []int{16 << 10, 1 << 20} {
		for _, mode := range []string{"always", "always-group", "interval", "never"} {
			b.Run(fmt.Sprintf("%s/%dKiB", mode, size>>10), func(b *testing.B) {
				disk := diskBandwidth(b)
				cfg := DefaultConfig()
				switch mode {
				case "interval":
					cfg.Fsync = FsyncInterval
				case "never":
					cfg.Fsync = FsyncNever
				}
				cfg.SegmentBytes = 256 << 20
				dir := b.TempDir()
				l := mustOpen(b, dir, cfg)
				defer l.Close()
				batch := benchBatch(size)
				h, _ := ParseBatchHeader(batch)
				per := int64(h.LastOffsetDelta) + 1
				sem := make(chan struct{}, 16)
				var wg sync.WaitGroup
				ctx := context.Background()
				b.SetBytes(int64(len(batch)))
				b.ResetTimer()
				start := time.Now()
				for i := 0; b.Loop(); i++ {
					SetBaseOffset(batch, int64(i)*per)
					info, err := l.Append(batch)
					if err != nil {
						b.Fatal(err)
					}
					switch mode {
					case "always":
						if err := l.Sync(ctx, info.LastOffset); err != nil {
							b.Fatal(err)
						}
					case "always-group":
						sem <- struct{}{}
						wg.Add(1)
						go func(off int64) {
							defer wg.Done()
							defer func() { <-sem }()
							if err := l.Sync(ctx, off); err != nil {
								b.Error(err)
							}
						}(info.LastOffset)
					}
				}
				wg.Wait()
				el := time.Since(start).Seconds()
				mbps := float64(b.N) * float64(len(batch)) / el
				b.ReportMetric(mbps/disk, "disk-ratio")
			})
		}
	}
}

// BenchmarkRead measures sequential reads of 1 MiB fetches over a 64 MiB log of 16 KiB batches.
func BenchmarkRead(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Fsync = FsyncNever
	cfg.SegmentBytes = 16 << 20
	l := mustOpen(b, b.TempDir(), cfg)
	defer l.Close()
	batch := benchBatch(16 << 10)
	h, _ := ParseBatchHeader(batch)
	per := int64(h.LastOffsetDelta) + 1
	for i := 0; i < (64<<20)/len(batch); i++ {
		SetBaseOffset(batch, int64(i)*per)
		mustAppend(b, l, batch)
	}
	leo := l.EndOffset()
	buf := make([]byte, 2<<20)
	b.ResetTimer()
	var total int64
	off := int64(0)
	for b.Loop() {
		sl, err := l.Read(off, 1<<20, leo)
		if err != nil {
			b.Fatal(err)
		}
		f, pos, n := sl.File()
		if _, err := f.ReadAt(buf[:n], pos); err != nil {
			b.Fatal(err)
		}
		sl.Release()
		total += int64(n)
		off += int64(n/len(batch)) * per
		if off >= leo {
			off = 0
		}
	}
	b.SetBytes(total / int64(b.N))
}

// BenchmarkRecovery1GiB measures recovery (length + CRC-32C scan and index rebuild) of one 1 GiB
// segment after an unclean stop, with the file in the page cache. Building the segment takes a while,
// so it only runs with -benchtime 1x.
func BenchmarkRecovery1GiB(b *testing.B) {
	if bt := flag.Lookup("test.benchtime"); bt == nil || bt.Value.String() != "1x" {
		b.Skip("run with -benchtime 1x: building a 1 GiB segment takes seconds")
	}
	dir := b.TempDir()
	cfg := DefaultConfig()
	cfg.Fsync = FsyncNever
	l := mustOpen(b, dir, cfg)
	batch := benchBatch(1 << 20)
	h, _ := ParseBatchHeader(batch)
	per := int64(h.LastOffsetDelta) + 1
	n := (1<<30)/len(batch) - 1
	for i := 0; i < n; i++ {
		SetBaseOffset(batch, int64(i)*per)
		mustAppend(b, l, batch)
	}
	crash(l)
	// Recover from offset 0: the whole segment is scanned.
	if err := os.Remove(filepath.Join(dir, checkpointFile)); err != nil && !os.IsNotExist(err) {
		b.Fatal(err)
	}
	b.SetBytes(int64(n * len(batch)))
	b.ResetTimer()
	for b.Loop() {
		l2, err := Open(dir, cfg)
		if err != nil {
			b.Fatal(err)
		}
		if l2.EndOffset() != int64(n)*per {
			b.Fatalf("recovered leo %d", l2.EndOffset())
		}
		crash(l2)
	}
}

// BenchmarkOpen1000 measures opening 1,000 cleanly closed partitions of small logs (the broker's
// startup path); the reported ns/op is for all 1,000.
func BenchmarkOpen1000(b *testing.B) {
	root := b.TempDir()
	cfg := smallConfig()
	const parts = 1000
	for p := range parts {
		l := mustOpen(b, filepath.Join(root, fmt.Sprint(p)), cfg)
		for i := int64(0); i < 20; i++ {
			mustAppend(b, l, buildTestBatch(batchSpec{base: i * 3, n: 3, valSize: 50}))
		}
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
	}
	logs := make([]*Log, parts)
	b.ResetTimer()
	for b.Loop() {
		for p := range parts {
			logs[p] = mustOpen(b, filepath.Join(root, fmt.Sprint(p)), cfg)
		}
		b.StopTimer()
		for _, l := range logs {
			if err := l.Close(); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
	}
}

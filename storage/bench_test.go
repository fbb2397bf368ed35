package storage

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/cputime"
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
	diskOnce.Do(func() { diskBW = measureDisk(tb, os.TempDir(), 512) })
	return diskBW
}

// measureDisk writes count MiB to a file in dir with 1 MiB writes and one fdatasync, returning bytes per
// second. The machine's disk is shared, so the append benchmarks for fsync always measure it again right
// before they run and compare against that.
func measureDisk(tb testing.TB, dir string, count int) float64 {
	f, err := os.CreateTemp(dir, "strom-disk-bw")
	if err != nil {
		tb.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 1<<20)
	start := time.Now()
	for range count {
		if _, err := f.Write(buf); err != nil {
			tb.Fatal(err)
		}
	}
	if err := fdatasync(f); err != nil {
		tb.Fatal(err)
	}
	return float64(count<<20) / time.Since(start).Seconds()
}

// measureSyncEach is the floor under a one-producer "always" append: count MiB written in chunks of
// size bytes, each followed by its own fdatasync (no CRC, no index), in bytes per second. The gap
// between it and measureDisk is what a per-append fsync costs on this disk, whatever the log does.
func measureSyncEach(tb testing.TB, dir string, count, size int) float64 {
	f, err := os.CreateTemp(dir, "strom-disk-sync")
	if err != nil {
		tb.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, size)
	total := count << 20
	start := time.Now()
	for n := 0; n < total; n += size {
		if _, err := f.Write(buf); err != nil {
			tb.Fatal(err)
		}
		if err := fdatasync(f); err != nil {
			tb.Fatal(err)
		}
	}
	return float64(total) / time.Since(start).Seconds()
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
// The disk-ratio metric is append MB/s divided by the disk's dd-style bandwidth (one fdatasync at the
// end); sync-each-MB/s is the same disk written in the batch size with an fdatasync after every write,
// the ceiling of the one-producer "always" mode; cpu-s/GB is the process' user and system CPU per GB
// appended, most of it the kernel's page-cache writes, writeback and fsyncs.
func BenchmarkAppend(b *testing.B) {
	for _, size := range []int{4 << 10, 16 << 10, 1 << 20} {
		for _, mode := range []string{"always", "always-group", "interval", "never"} {
			b.Run(fmt.Sprintf("%s/%dKiB", mode, size>>10), func(b *testing.B) {
				disk := diskBandwidth(b)
				dir := b.TempDir()
				bare := 0.0
				if strings.HasPrefix(mode, "always") {
					disk = measureDisk(b, dir, 256)
					bare = measureSyncEach(b, dir, 256, size)
				}
				cfg := DefaultConfig()
				switch mode {
				case "interval":
					cfg.Fsync = FsyncInterval
				case "never":
					cfg.Fsync = FsyncNever
				}
				cfg.SegmentBytes = 256 << 20
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
				start, cpu0 := time.Now(), cputime.Process()
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
				el, cpu := time.Since(start).Seconds(), cputime.Process()-cpu0
				mbps := float64(b.N) * float64(len(batch)) / el
				b.ReportMetric(cpu/(float64(b.N)*float64(len(batch))/1e9), "cpu-s/GB")
				b.ReportMetric(mbps/disk, "disk-ratio")
				b.ReportMetric(disk/1e6, "disk-MB/s")
				if bare > 0 {
					b.ReportMetric(bare/1e6, "sync-each-MB/s")
				}
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

// BenchmarkOpen1000 measures opening 1,000 partitions of small logs (the broker's startup path); the
// reported ns/op is for all 1,000. "clean" follows a clean Close; "unclean" follows a crash (no marker),
// so each partition recovers its active segment.
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
	for _, mode := range []string{"clean", "unclean"} {
		b.Run(mode, func(b *testing.B) {
			logs := make([]*Log, parts)
			for b.Loop() {
				if mode == "unclean" {
					b.StopTimer()
					for p := range parts {
						_ = os.Remove(filepath.Join(root, fmt.Sprint(p), cleanMarkerFile))
					}
					b.StartTimer()
				}
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
		})
	}
}

// BenchmarkAppendIndexed appends small batches with an index entry on
// every append (index.interval.bytes below the batch size), the case where
// the index and time-index writes cost as much as the log write itself.
func BenchmarkAppendIndexed(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Fsync = FsyncNever
	cfg.IndexIntervalBytes = 1
	cfg.SegmentBytes = 256 << 20
	l := mustOpen(b, b.TempDir(), cfg)
	defer l.Close()
	batch := benchBatch(1 << 10)
	h, _ := ParseBatchHeader(batch)
	per := int64(h.LastOffsetDelta) + 1
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		SetBaseOffset(batch, int64(i)*per)
		if _, err := l.Append(batch); err != nil {
			b.Fatal(err)
		}
	}
}

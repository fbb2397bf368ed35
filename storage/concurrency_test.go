package storage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// concBatch is the deterministic batch with base offset base used by the concurrency test, so a reader
// can check any batch it gets against what must be there.
func concBatch(base int64) []byte {
	return buildTestBatch(batchSpec{base: base, n: 2, ts: base, valSize: int(base % 300)})
}

// TestConcurrentReadersAndWriter runs readers against a writer that appends, rolls, truncates and
// deletes old segments; every batch a reader gets must be intact and be the one written at its offset.
// Run under -race this also checks the lock-free publication of segments and indexes.
func TestConcurrentReadersAndWriter(t *testing.T) {
	cfg := smallConfig()
	cfg.RetentionBytes = 20000
	cfg.RetentionMS = -1
	l := mustOpen(t, t.TempDir(), cfg)
	defer l.Close()
	var stop atomic.Bool
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	report := func(err error) {
		select {
		case errc <- err:
		default:
		}
	}
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load() && i < 100000; i++ {
				// Like the broker, read only below the high watermark, which truncation never crosses.
				hw := l.HighWatermark()
				start := l.LogStartOffset()
				if hw <= start {
					continue
				}
				off := start + int64(i)%(hw-start)
				sl, err := l.Read(off, 2000, hw)
				if errors.Is(err, ErrOffsetOutOfRange) {
					continue // retention or truncation moved the range meanwhile
				}
				if err != nil {
					report(err)
					return
				}
				b, err := sl.Bytes()
				sl.Release()
				if err != nil {
					report(err)
					return
				}
				if err := SplitBatches(b, func(h BatchHeader, batch []byte) bool {
					if !bytes.Equal(batch, concBatch(h.BaseOffset)) {
						report(errors.New("reader got a batch that differs from what was written"))
						return false
					}
					return true
				}); err != nil {
					report(err)
					return
				}
			}
		}()
	}
	next := int64(0)
	for i := 0; i < 600; i++ {
		if i%100 == 99 {
			to := max(l.LogStartOffset(), next-7)
			if err := l.TruncateTo(to); err != nil {
				t.Fatal(err)
			}
			next = l.EndOffset()
		}
		if _, err := l.Append(concBatch(next)); err != nil {
			t.Fatal(err)
		}
		next += 2
		l.SetHighWatermark(next - 20)
		if i%50 == 0 {
			if _, err := l.EnforceRetention(time.Now()); err != nil {
				t.Fatal(err)
			}
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
}

func TestSliceWriteToSendfile(t *testing.T) {
	l := mustOpen(t, t.TempDir(), DefaultConfig())
	defer l.Close()
	var want []byte
	for i := int64(0); i < 20; i++ {
		b := buildTestBatch(batchSpec{base: i * 5, n: 5, valSize: 2000})
		want = append(want, b...)
		mustAppend(t, l, b)
	}
	sl, err := l.Read(0, 1<<20, l.EndOffset())
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Release()
	if sl.Len() != len(want) {
		t.Fatalf("slice len %d want %d", sl.Len(), len(want))
	}
	t.Run("tcp", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		got := make(chan []byte, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				got <- nil
				return
			}
			defer c.Close()
			b, _ := io.ReadAll(c)
			got <- b
		}()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		// Two slices back to back on one connection: explicit offsets must not disturb each other.
		for range 2 {
			if n, err := sl.WriteTo(c); err != nil || int(n) != len(want) {
				t.Fatalf("WriteTo: %d %v", n, err)
			}
		}
		c.Close()
		if b := <-got; !bytes.Equal(b, append(bytes.Clone(want), want...)) {
			t.Fatalf("received %d bytes", len(b))
		}
	})
	t.Run("file", func(t *testing.T) {
		f, err := os.Create(filepath.Join(t.TempDir(), "out"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if n, err := sl.WriteTo(f); err != nil || int(n) != len(want) {
			t.Fatalf("WriteTo: %d %v", n, err)
		}
		b, _ := os.ReadFile(f.Name())
		if !bytes.Equal(b, want) {
			t.Fatal("file content differs")
		}
	})
	t.Run("released", func(t *testing.T) {
		s2, err := l.Read(0, 10, l.EndOffset())
		if err != nil {
			t.Fatal(err)
		}
		s2.Release()
		s2.Release() // idempotent
		if _, err := s2.Bytes(); !errors.Is(err, ErrClosed) {
			t.Fatalf("bytes after release: %v", err)
		}
	})
}

func TestSyncContextAndInterval(t *testing.T) {
	cfg := DefaultConfig()
	l := mustOpen(t, t.TempDir(), cfg)
	defer l.Close()
	info := mustAppend(t, l, buildTestBatch(batchSpec{base: 0, n: 3}))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// Either the data is already durable or the cancelled context is reported; never a hang.
	if err := l.Sync(ctx, info.LastOffset); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	// Asking beyond the end waits only for what exists.
	if err := l.Sync(context.Background(), 1000); err != nil {
		t.Fatal(err)
	}
	if l.RecoveryPoint() != 3 {
		t.Fatalf("recovery point %d", l.RecoveryPoint())
	}
	// Switch to the interval policy at runtime: the background flusher advances the recovery point.
	cfg.Fsync, cfg.FsyncInterval = FsyncInterval, time.Millisecond
	l.SetConfig(cfg)
	mustAppend(t, l, buildTestBatch(batchSpec{base: 3, n: 3}))
	deadline := time.Now().Add(10 * time.Second)
	for l.RecoveryPoint() != 6 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if l.RecoveryPoint() != 6 {
		t.Fatalf("interval flusher did not run: recovery point %d", l.RecoveryPoint())
	}
	cfg.Fsync = FsyncNever
	l.SetConfig(cfg)
	if l.flusher != nil {
		t.Fatal("flusher still running under fsync never")
	}
}

func TestRollBySegmentMS(t *testing.T) {
	now := time.UnixMilli(1_000_000)
	cfg := DefaultConfig()
	cfg.SegmentMS = time.Minute
	l := mustOpen(t, t.TempDir(), cfg, WithClock(func() time.Time { return now }))
	defer l.Close()
	tests := []struct {
		advance time.Duration
		segs    int
	}{
		{0, 1}, {30 * time.Second, 1}, {31 * time.Second, 2}, {59 * time.Second, 2}, {time.Second, 3},
	}
	off := int64(0)
	for i, tc := range tests {
		now = now.Add(tc.advance)
		mustAppend(t, l, buildTestBatch(batchSpec{base: off, n: 1}))
		off++
		if l.NumSegments() != tc.segs {
			t.Fatalf("step %d: %d segments, want %d", i, l.NumSegments(), tc.segs)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(file, DefaultConfig()); err == nil {
		t.Fatal("open on a file succeeded")
	}
	// A corrupt epoch checkpoint is reported, not guessed around.
	d2 := t.TempDir()
	if err := os.WriteFile(filepath.Join(d2, epochFile), []byte("0\n5\n1 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(d2, DefaultConfig()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupt epoch file: %v", err)
	}
	// Operations after Close.
	l := mustOpen(t, t.TempDir(), DefaultConfig())
	l.Close()
	if _, err := l.Append(buildTestBatch(batchSpec{base: 0})); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	if _, err := l.Read(0, 1, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}

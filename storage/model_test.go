package storage

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"
)

// modelBatch is a batch as the in-memory model keeps it.
type modelBatch struct {
	base, last int64
	data       []byte
}

// logModel is the reference the model-based test compares the real Log against.
type logModel struct {
	batches  []modelBatch
	logStart int64
	leo      int64
}

// visible returns the batches a full read from the log start must return.
func (m *logModel) visible() []byte {
	var out []byte
	for _, b := range m.batches {
		if b.last >= m.logStart {
			out = append(out, b.data...)
		}
	}
	return out
}

// TestModel runs seeded random sequences of operations against a Log and an in-memory model.
func TestModel(t *testing.T) {
	seeds := 12
	if testing.Short() {
		seeds = 3
	}
	for seed := 1; seed <= seeds; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runModel(t, uint64(seed), 250) })
	}
}

func runModel(t *testing.T, seed uint64, ops int) {
	rng := rand.New(rand.NewPCG(seed, 99))
	dir := t.TempDir()
	now := time.UnixMilli(1_000_000)
	clock := func() time.Time { return now }
	cfg := DefaultConfig()
	cfg.SegmentBytes = int64(1000 + rng.IntN(4000))
	cfg.SegmentMS = time.Hour
	cfg.IndexIntervalBytes = 1 + rng.IntN(600)
	cfg.Fsync = FsyncPolicy(rng.IntN(3))
	cfg.FsyncInterval = time.Millisecond
	cfg.RetentionMS = -1
	l := mustOpen(t, dir, cfg, WithClock(clock))
	defer func() { l.Close() }()
	m := &logModel{}
	var history []string
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("seed %d after %v: %s", seed, history[max(0, len(history)-8):], fmt.Sprintf(format, args...))
	}
	for op := 0; op < ops; op++ {
		switch k := rng.IntN(100); {
		case k < 50: // append 1-3 batches, sometimes with a gap
			var buf []byte
			next := m.leo
			if rng.IntN(10) == 0 {
				next += int64(rng.IntN(20))
			}
			var added []modelBatch
			for range 1 + rng.IntN(3) {
				n := 1 + rng.IntN(5)
				b := buildTestBatch(batchSpec{base: next, n: n, ts: now.UnixMilli() - int64(rng.IntN(1000)), valSize: rng.IntN(300)})
				added = append(added, modelBatch{base: next, last: next + int64(n) - 1, data: b})
				buf = append(buf, b...)
				next += int64(n)
			}
			if _, err := l.Append(buf); err != nil {
				fail("append: %v", err)
			}
			m.batches = append(m.batches, added...)
			m.leo = next
			history = append(history, fmt.Sprintf("append %d..%d", added[0].base, next))
		case k < 65: // read from a random offset and compare
			if m.leo == m.logStart {
				continue
			}
			off := m.logStart + rng.Int64N(m.leo-m.logStart+1)
			upTo := off + rng.Int64N(m.leo-off+1)
			maxB := 1 + rng.IntN(3000)
			sl, err := l.Read(off, maxB, upTo)
			if err != nil {
				fail("read %d: %v", off, err)
			}
			got, err := sl.Bytes()
			sl.Release()
			if err != nil {
				fail("bytes: %v", err)
			}
			// Expected: batches from the first with last >= off, below upTo, within maxB (at least one),
			// all from one segment, so the real result may be a prefix of the model's - but never empty
			// when a batch qualifies and never different bytes.
			var want []byte
			for _, b := range m.batches {
				if b.last < off {
					continue
				}
				if b.last >= upTo || (len(want) > 0 && len(want)+len(b.data) > maxB) {
					break
				}
				want = append(want, b.data...)
			}
			if !bytes.HasPrefix(want, got) || (len(want) > 0 && len(got) == 0) {
				fail("read(%d,%d,%d): got %d bytes, model %d", off, maxB, upTo, len(got), len(want))
			}
		case k < 72: // truncate
			if m.leo == m.logStart {
				continue
			}
			to := m.logStart + rng.Int64N(m.leo-m.logStart+1)
			if err := l.TruncateTo(to); err != nil {
				fail("truncate %d: %v", to, err)
			}
			for len(m.batches) > 0 && m.batches[len(m.batches)-1].last >= to {
				m.batches = m.batches[:len(m.batches)-1]
			}
			m.leo = to
			history = append(history, fmt.Sprintf("truncate %d", to))
		case k < 77: // roll by time
			now = now.Add(2 * time.Hour)
			history = append(history, "clock+2h")
		case k < 82: // retention by bytes
			c := cfg
			c.RetentionBytes = int64(rng.IntN(8000))
			l.SetConfig(c)
			n, err := l.EnforceRetention(now)
			if err != nil {
				fail("retention: %v", err)
			}
			l.SetConfig(cfg)
			if l.LogStartOffset() < m.logStart {
				fail("log start went back")
			}
			m.logStart = l.LogStartOffset()
			history = append(history, fmt.Sprintf("retention deleted %d -> start %d", n, m.logStart))
		case k < 87: // delete records
			if m.leo == m.logStart {
				continue
			}
			to := m.logStart + rng.Int64N(m.leo-m.logStart+1)
			if err := l.DeleteRecordsBefore(to); err != nil {
				fail("delete records %d: %v", to, err)
			}
			m.logStart = to
			history = append(history, fmt.Sprintf("delete-records %d", to))
		case k < 94: // clean restart
			if err := l.Close(); err != nil {
				fail("close: %v", err)
			}
			if testing.Verbose() {
				ents, _ := os.ReadDir(dir)
				for _, e := range ents {
					fi, _ := e.Info()
					t.Logf("  %s %d", e.Name(), fi.Size())
				}
				b, _ := os.ReadFile(dir + "/" + checkpointFile)
				t.Logf("%s", b)
			}
			l = mustOpen(t, dir, cfg, WithClock(clock))
			history = append(history, "restart")
		default: // crash restart
			crash(l)
			l = mustOpen(t, dir, cfg, WithClock(clock))
			history = append(history, "crash")
		}
		if l.EndOffset() != m.leo || l.LogStartOffset() != m.logStart {
			// After a crash a gap at the end (truncation into a batch, gap appends) is not recoverable
			// from the data alone: the log end becomes the end of the last batch. Accept that and
			// adopt it in the model, but never more than the model's end.
			if history[len(history)-1] == "crash" && l.EndOffset() <= m.leo && l.LogStartOffset() == m.logStart {
				last := m.logStart
				if n := len(m.batches); n > 0 {
					last = max(last, m.batches[n-1].last+1)
				}
				if l.EndOffset() < last {
					fail("crash lost data: leo %d, model last batch end %d", l.EndOffset(), last)
				}
				m.leo = l.EndOffset()
			} else {
				fail("offsets: log [%d,%d) model [%d,%d)", l.LogStartOffset(), l.EndOffset(), m.logStart, m.leo)
			}
		}
		if op%10 == 0 || op == ops-1 {
			if got := readAll(t, l, m.logStart); !bytes.Equal(got, m.visible()) {
				fail("content: log %d bytes, model %d", len(got), len(m.visible()))
			}
		}
		if _, err := l.Read(m.leo+1, 10, m.leo+1); !errors.Is(err, ErrOffsetOutOfRange) {
			fail("read past end: %v", err)
		}
	}
}

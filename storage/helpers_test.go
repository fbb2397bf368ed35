package storage

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// batchSpec describes a test batch.
type batchSpec struct {
	base      int64
	n         int   // records
	ts        int64 // base timestamp; record i has ts+i
	valSize   int
	pid       int64
	epoch     int16
	seq       int32
	txn       bool
	control   bool
	leaderEp  int32
	keyPrefix string
	keys      []string // explicit keys (len n), "" with nilKey means null
	tombstone []bool
	abort     bool  // control batches: ABORT marker instead of COMMIT
	coordEp   int32 // control batches: the transaction coordinator epoch in the marker's value
}

func buildTestBatch(s batchSpec) []byte {
	if s.pid == 0 {
		s.pid = -1
		s.epoch = -1
		s.seq = -1
	}
	if s.n == 0 {
		s.n = 1
	}
	recs := make([]Record, s.n)
	for i := range recs {
		key := []byte(fmt.Sprintf("%sk%d", s.keyPrefix, s.base+int64(i)))
		if s.keys != nil {
			key = []byte(s.keys[i])
		}
		val := bytes.Repeat([]byte{byte('a' + (s.base+int64(i))%26)}, s.valSize)
		if s.valSize == 0 {
			val = []byte(fmt.Sprintf("v%d", s.base+int64(i)))
		}
		if s.tombstone != nil && s.tombstone[i] {
			val = nil
		}
		if s.control {
			typ := byte(controlCommit)
			if s.abort {
				typ = controlAbort
			}
			key, val = []byte{0, 0, 0, typ}, []byte{0, 0, byte(s.coordEp >> 24), byte(s.coordEp >> 16), byte(s.coordEp >> 8), byte(s.coordEp)}
		}
		recs[i] = Record{TimestampDelta: int64(i), OffsetDelta: int32(i), Key: key, Value: val}
	}
	var attr int16
	if s.txn {
		attr |= attrTransactional
	}
	if s.control {
		attr |= attrControl
	}
	h := BatchHeader{
		BaseOffset: s.base, PartitionLeaderEpoch: s.leaderEp, Attributes: attr,
		LastOffsetDelta: int32(s.n - 1), BaseTimestamp: s.ts, MaxTimestamp: s.ts + int64(s.n-1),
		ProducerID: s.pid, ProducerEpoch: s.epoch, BaseSequence: s.seq,
	}
	return BuildBatch(h, recs)
}

func mustOpen(t testing.TB, dir string, cfg Config, opts ...Option) *Log {
	t.Helper()
	l, err := Open(dir, cfg, opts...)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return l
}

func mustAppend(t testing.TB, l *Log, b []byte) AppendInfo {
	t.Helper()
	info, err := l.Append(b)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return info
}

// readAll reads every batch from offset to the end and returns them concatenated.
func readAll(t testing.TB, l *Log, from int64) []byte {
	t.Helper()
	var out []byte
	off := from
	for off < l.EndOffset() {
		sl, err := l.Read(off, 1<<20, l.EndOffset())
		if err != nil {
			t.Fatalf("read %d: %v", off, err)
		}
		b, err := sl.Bytes()
		sl.Release()
		if err != nil {
			t.Fatalf("slice bytes: %v", err)
		}
		if len(b) == 0 {
			break
		}
		var last int64
		if err := SplitBatches(b, func(h BatchHeader, _ []byte) bool { last = h.LastOffset(); return true }); err != nil {
			t.Fatalf("split: %v", err)
		}
		out = append(out, b...)
		off = last + 1
	}
	return out
}

// crash drops the log without a clean shutdown, as if the process died (files stay as written).
func crash(l *Log) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.flusher != nil {
		l.flusher.stop()
		l.flusher = nil
	}
	l.closed.Store(true)
	l.releaseAll()
}

func smallConfig() Config {
	c := DefaultConfig()
	c.SegmentBytes = 4096
	c.IndexIntervalBytes = 256
	c.Fsync = FsyncNever
	return c
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }

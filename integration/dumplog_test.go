package integration

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/integration/harness"
	"github.com/stromhq/strom/storage"
)

// testBatch describes one v2 record batch to encode: its records, codec and producer fields.
type testBatch struct {
	base          int64
	n             int   // records
	tsBase        int64 // record j has timestamp tsBase + j
	gzip          bool
	producerID    int64 // -1: not idempotent
	epoch         int16
	seq           int32
	transactional bool
	control       bool // a COMMIT marker (one record); implies transactional
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encode builds the batch with kmsg, the way a producer would: records, optional gzip, length, then
// CRC-32C over everything from the attributes on.
func (b testBatch) encode(t testing.TB) []byte {
	t.Helper()
	var recs []byte
	for j := range b.n {
		r := kmsg.Record{TimestampDelta64: int64(j), OffsetDelta: int32(j),
			Key:     fmt.Appendf(nil, "k-%d", b.base+int64(j)),
			Value:   fmt.Appendf(nil, "v-%d", b.base+int64(j)),
			Headers: []kmsg.Header{{Key: "h", Value: []byte("x")}},
		}
		if b.control {
			// Control record: key = version 0, type 1 (COMMIT); value = version 0, coordinator epoch 7.
			r.Key, r.Value, r.Headers = []byte{0, 0, 0, 1}, []byte{0, 0, 0, 0, 0, 7}, nil
		}
		r.Length = int32(len(r.AppendTo(nil)) - 1) // the body after a 1-byte zero length varint
		recs = r.AppendTo(recs)
	}
	var attrs int16
	if b.gzip {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(recs); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		recs = buf.Bytes()
		attrs |= 1
	}
	if b.transactional || b.control {
		attrs |= 0x10
	}
	if b.control {
		attrs |= 0x20
	}
	seq := b.seq
	if b.producerID < 0 {
		seq = -1
	}
	rb := kmsg.RecordBatch{
		FirstOffset: b.base, Magic: 2, Attributes: attrs, LastOffsetDelta: int32(b.n - 1),
		FirstTimestamp: b.tsBase, MaxTimestamp: b.tsBase + int64(b.n-1),
		ProducerID: b.producerID, ProducerEpoch: b.epoch, FirstSequence: seq,
		NumRecords: int32(b.n), Records: recs,
	}
	if b.producerID < 0 {
		rb.ProducerEpoch = -1
	}
	rb.Length = int32(len(rb.AppendTo(nil)) - 12)
	raw := rb.AppendTo(nil)
	rb.CRC = int32(crc32.Checksum(raw[21:], castagnoli))
	raw = rb.AppendTo(nil)
	if err := storage.VerifyCRC(raw); err != nil {
		t.Fatalf("batch at %d: our own encoding fails storage.VerifyCRC: %v", b.base, err)
	}
	return raw
}

// TestDumpLogReadsStromSegments writes a partition with Strom's storage (several segments, plain, gzip,
// idempotent, transactional and control batches), closes it, and runs Apache Kafka's DumpLogSegments
// (4.x and 3.9) over every .log, .index and .timeindex file: every batch and record
// must appear at its offset, and the tool must report no invalid batch, index mismatch or corruption.
func TestDumpLogReadsStromSegments(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dump-0")
	cfg := storage.DefaultConfig()
	cfg.SegmentBytes = 700      // several segments
	cfg.IndexIntervalBytes = 50 // several index entries per segment
	cfg.Fsync = storage.FsyncNever
	l, err := storage.Open(dir, cfg)
	if err != nil {
		t.Fatalf("open log: %v", err)
	}

	const ts0 = 1_700_000_000_000
	var batches []testBatch
	next := int64(0)
	add := func(b testBatch) {
		b.base = next
		b.tsBase = ts0 + next*10
		if b.n == 0 {
			b.n = 1
		}
		batches = append(batches, b)
		next += int64(b.n)
	}
	for i := range 8 {
		add(testBatch{n: 1 + i%5, producerID: -1})
	}
	add(testBatch{n: 5, gzip: true, producerID: -1})
	add(testBatch{n: 3, producerID: 4242, epoch: 0, seq: 0})
	add(testBatch{n: 2, producerID: 4242, epoch: 0, seq: 3})
	add(testBatch{n: 2, producerID: 5151, epoch: 1, seq: 0, transactional: true})
	add(testBatch{n: 1, producerID: 5151, epoch: 1, seq: -1, control: true})
	for i := range 6 {
		add(testBatch{n: 2 + i%3, producerID: -1})
	}

	for _, b := range batches {
		raw := b.encode(t)
		info, err := l.Append(raw)
		if err != nil {
			t.Fatalf("append batch at %d: %v", b.base, err)
		}
		if info.FirstOffset != b.base || info.LastOffset != b.base+int64(b.n-1) {
			t.Fatalf("append batch at %d: AppendInfo %+v", b.base, info)
		}
	}
	l.SetHighWatermark(next)
	if n := l.NumSegments(); n < 3 {
		t.Errorf("%d segments; the test wants several (segment.bytes %d)", n, cfg.SegmentBytes)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("close log: %v", err)
	}

	var files, indexes []string
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		// Producer .snapshot files are left out: Strom writes its own snapshot format there, which Kafka's
		// tool rejects ("unknown file version"); the data files are what must stay Kafka-readable.
		switch filepath.Ext(e.Name()) {
		case ".log":
			files = append(files, filepath.Join(dir, e.Name()))
		case ".index", ".timeindex":
			files = append(files, filepath.Join(dir, e.Name()))
			indexes = append(indexes, filepath.Join(dir, e.Name()))
		}
	}
	slices.Sort(files)
	t.Logf("files: %d (%d index files)", len(files), len(indexes))

	for _, v := range []string{harness.DefaultKafkaVersion, harness.Kafka39Version} {
		t.Run("kafka-"+v, func(t *testing.T) {
			res, err := harness.KafkaTool(t.Context(), v, harness.ToolDumpLog, nil,
				"--files", strings.Join(files, ","), "--print-data-log")
			if err != nil {
				t.Fatal(err)
			}
			out := res.Stdout + res.Stderr
			for _, p := range dumpProblems(out) {
				t.Errorf("DumpLogSegments reports: %s", p)
			}
			for _, b := range batches {
				line := fmt.Sprintf("baseOffset: %d lastOffset: %d count: %d", b.base, b.base+int64(b.n-1), b.n)
				if c := strings.Count(out, line); c != 1 {
					t.Errorf("batch %q appears %d times, want once", line, c)
				}
				if b.gzip && !strings.Contains(out, line) {
					continue
				}
				for j := range b.n {
					off := b.base + int64(j)
					want := fmt.Sprintf("| offset: %d CreateTime: %d ", off, b.tsBase+int64(j))
					if !strings.Contains(out, want) {
						t.Errorf("record %d: no %q", off, want)
					}
					if !b.control && !strings.Contains(out, fmt.Sprintf("key: k-%d payload: v-%d", off, off)) {
						t.Errorf("record %d: key/payload not printed", off)
					}
				}
				if b.control && !strings.Contains(out, "endTxnMarker: COMMIT coordinatorEpoch: 7") {
					t.Errorf("control batch at %d: no COMMIT marker printed", b.base)
				}
			}
			if !strings.Contains(out, "compresscodec: gzip") {
				t.Errorf("no gzip batch reported")
			}
			if t.Failed() {
				t.Logf("dump:\n%s", out)
			}

			if len(indexes) == 0 {
				return
			}
			res, err = harness.KafkaTool(t.Context(), v, harness.ToolDumpLog, nil,
				"--index-sanity-check", "--files", strings.Join(indexes, ","))
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range indexes {
				if !strings.Contains(res.Stdout, f+" passed sanity check.") &&
					!strings.Contains(res.Stdout, f+" is empty.") {
					t.Errorf("index sanity check of %s did not pass:\n%s%s", f, res.Stdout, res.Stderr)
				}
			}
		})
	}
}

// dumpProblems returns what DumpLogSegments' output reports as wrong: invalid batches, trailing bytes,
// index or time-index mismatches, exceptions, and offset gaps. The tool restarts its gap check at -1 for
// every file, so "-1 is followed by B" for a segment whose base offset is B is its quirk, not a gap.
func dumpProblems(out string) []string {
	var probs []string
	for _, bad := range []string{"isvalid: false", "invalid bytes", "Mismatches in", "mismatch",
		"out of order", "not found in the log", "Exception", "corrupt", "Corrupt", "failed"} {
		if strings.Contains(out, bad) {
			probs = append(probs, fmt.Sprintf("%q", bad))
		}
	}
	lines := strings.Split(out, "\n")
	for i := 0; i < len(lines); i++ {
		file, ok := strings.CutPrefix(lines[i], "Non-consecutive offsets in ")
		if !ok {
			continue
		}
		var base int64
		if _, err := fmt.Sscanf(filepath.Base(file), "%d.log", &base); err != nil {
			probs = append(probs, "gap report for an unnamed file: "+lines[i])
			continue
		}
		for i+1 < len(lines) && strings.HasPrefix(lines[i+1], "  ") {
			i++
			var from, to int64
			if _, err := fmt.Sscanf(strings.TrimSpace(lines[i]), "%d is followed by %d", &from, &to); err != nil ||
				from != -1 || to != base {
				probs = append(probs, fmt.Sprintf("offset gap in %s: %s", file, strings.TrimSpace(lines[i])))
			}
		}
	}
	return probs
}

func TestDumpProblems(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want int
	}{
		{"clean", "Dumping /d/00000000000000000000.log\nbaseOffset: 0 lastOffset: 0 count: 1 isvalid: true\n", 0},
		{"segment start quirk", "Non-consecutive offsets in /d/00000000000000000016.log\n  -1 is followed by 16\n", 0},
		{"real gap", "Non-consecutive offsets in /d/00000000000000000016.log\n  -1 is followed by 16\n  20 is followed by 25\n", 1},
		{"wrong start", "Non-consecutive offsets in /d/00000000000000000016.log\n  -1 is followed by 17\n", 1},
		{"invalid batch", "baseOffset: 0 lastOffset: 0 count: 1 crc: 1 isvalid: false\n", 1},
		{"trailing bytes", "Found 12 invalid bytes at the end of 00000000000000000000.log\n", 1},
		{"index mismatch", "Mismatches in :/d/00000000000000000000.index\n  Index offset: 5, log offset: 4\n", 1},
		{"time index", "Found timestamp mismatch in :/d/0.timeindex\n", 1},
	}
	for _, tt := range tests {
		if got := dumpProblems(tt.out); len(got) != tt.want {
			t.Errorf("%s: problems %q, want %d", tt.name, got, tt.want)
		}
	}
}

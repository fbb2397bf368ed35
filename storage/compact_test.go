package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
)

// kv is one record for compaction tests; val nil is a tombstone.
type kv struct {
	key string
	val []byte
	ts  int64
}

// appendKVs appends one batch holding recs at the log end with the given codec and producer fields.
func appendKVs(t *testing.T, l *Log, codec int8, pid int64, txn bool, recs ...kv) int64 {
	t.Helper()
	base := l.EndOffset()
	rs := make([]Record, len(recs))
	for i, r := range recs {
		rs[i] = Record{OffsetDelta: int32(i), TimestampDelta: r.ts - recs[0].ts, Key: []byte(r.key), Value: r.val}
	}
	attr := int16(codec)
	if txn {
		attr |= attrTransactional
	}
	h := BatchHeader{BaseOffset: base, Attributes: attr, LastOffsetDelta: int32(len(recs) - 1),
		BaseTimestamp: recs[0].ts, MaxTimestamp: recs[len(recs)-1].ts, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
	if pid >= 0 {
		h.ProducerID, h.ProducerEpoch, h.BaseSequence = pid, 0, int32(base)
	}
	b, err := encodeBatch(h, rs)
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, b)
	return base
}

// appendMarker appends a commit or abort marker for pid.
func appendMarker(t *testing.T, l *Log, pid int64, typ int16, ts int64) {
	t.Helper()
	key := make([]byte, 4)
	binary.BigEndian.PutUint16(key[2:], uint16(typ))
	h := BatchHeader{BaseOffset: l.EndOffset(), Attributes: attrTransactional | attrControl, BaseTimestamp: ts,
		MaxTimestamp: ts, ProducerID: pid, ProducerEpoch: 0, BaseSequence: -1}
	b, err := encodeBatch(h, []Record{{Key: key, Value: []byte{0, 0, 0, 0, 0, 0}}})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, b)
}

type offRec struct {
	off int64
	key string
	val string
	nul bool
}

// logRecords decodes every record in the log, checking CRCs and offset order.
func logRecords(t *testing.T, l *Log) (recs []offRec, batches int, controls int) {
	t.Helper()
	raw := readAll(t, l, l.LogStartOffset())
	prev := int64(-1)
	if err := SplitBatches(raw, func(h BatchHeader, b []byte) bool {
		if err := VerifyCRC(b); err != nil {
			t.Fatalf("batch %d: %v", h.BaseOffset, err)
		}
		if h.BaseOffset <= prev {
			t.Fatalf("batch %d after %d", h.BaseOffset, prev)
		}
		prev = h.LastOffset()
		batches++
		if h.IsControl() {
			controls++
			return true
		}
		rs, err := batchRecords(h, b)
		if err != nil {
			t.Fatalf("batch %d: %v", h.BaseOffset, err)
		}
		for _, r := range rs {
			if r.OffsetDelta > h.LastOffsetDelta {
				t.Fatalf("record delta %d beyond batch delta %d", r.OffsetDelta, h.LastOffsetDelta)
			}
			recs = append(recs, offRec{off: h.BaseOffset + int64(r.OffsetDelta), key: string(r.Key), val: string(r.Value), nul: r.Value == nil})
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return recs, batches, controls
}

func compactConfig() Config {
	c := smallConfig()
	c.Compact, c.Delete = true, false
	c.SegmentBytes = 2048
	return c
}

func TestCompactKeepsNewestPerKey(t *testing.T) {
	for _, codec := range []int8{CompressionNone, CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd} {
		t.Run(fmt.Sprint("codec", codec), func(t *testing.T) {
			dir := t.TempDir()
			cfg := compactConfig()
			cfg.SegmentBytes = 300
			l := mustOpen(t, dir, cfg)
			defer l.Close()
			want := map[string]offRec{}
			for round := 0; round < 12; round++ {
				var recs []kv
				for k := 0; k < 5; k++ {
					key := fmt.Sprintf("key%d", (round+k)%8)
					recs = append(recs, kv{key: key, val: []byte(fmt.Sprintf("r%d-%s-%s", round, key, bytes.Repeat([]byte("x"), 30))), ts: int64(round*10 + k)})
				}
				base := appendKVs(t, l, codec, -1, false, recs...)
				for i, r := range recs {
					want[r.key] = offRec{off: base + int64(i), key: r.key, val: string(r.val)}
				}
			}
			// A newer write of key0 in the active segment does not let compaction drop key0 from the
			// cleaned ones (Kafka semantics: only the cleanable range is mapped), but nothing breaks.
			leo := l.EndOffset()
			l.SetHighWatermark(leo)
			before, _, _ := logRecords(t, l)
			if l.NumSegments() < 3 {
				t.Fatalf("need several segments, have %d", l.NumSegments())
			}
			if err := l.Compact(context.Background(), time.UnixMilli(1000)); err != nil {
				t.Fatal(err)
			}
			after, _, _ := logRecords(t, l)
			if l.EndOffset() != leo || len(after) >= len(before) {
				t.Fatalf("leo %d->%d, records %d->%d", leo, l.EndOffset(), len(before), len(after))
			}
			active := (*l.segs.Load())[l.NumSegments()-1].base
			seen := map[string]int{}
			for _, r := range after {
				if r.off < active {
					seen[r.key]++
				}
				if w := want[r.key]; r.off > w.off {
					t.Fatalf("record at %d beyond newest %d", r.off, w.off)
				}
			}
			for k, n := range seen {
				if n != 1 {
					t.Fatalf("key %s appears %d times in the cleaned segments", k, n)
				}
			}
			// Every key's newest record survives with its original offset and value.
			got := map[string]offRec{}
			for _, r := range after {
				got[r.key] = r
			}
			for k, w := range want {
				if got[k] != w {
					t.Fatalf("key %s: got %+v want %+v", k, got[k], w)
				}
			}
			// Reads at every offset still work (gaps are skipped to the next batch).
			for o := int64(0); o < leo; o++ {
				sl, err := l.Read(o, 1, leo)
				if err != nil {
					t.Fatalf("read %d: %v", o, err)
				}
				sl.Release()
			}
			// Reopen and compare.
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = mustOpen(t, dir, cfg)
			again, _, _ := logRecords(t, l)
			if fmt.Sprint(again) != fmt.Sprint(after) {
				t.Fatal("compacted log differs after reopen")
			}
		})
	}
}

func TestCompactTombstonesAndTransactions(t *testing.T) {
	cfg := compactConfig()
	cfg.DeleteRetention = time.Hour
	hour := int64(time.Hour / time.Millisecond)
	now := time.UnixMilli(10 * hour)
	l := mustOpen(t, t.TempDir(), cfg)
	defer l.Close()
	pad := bytes.Repeat([]byte("p"), 200)
	appendKVs(t, l, CompressionNone, -1, false, kv{"old", pad, 0}, kv{"new", pad, 0}, kv{"live", pad, 0})
	appendKVs(t, l, CompressionNone, -1, false, kv{"old", nil, 1 * hour}) // expired tombstone
	appendKVs(t, l, CompressionNone, -1, false, kv{"new", nil, 9*hour + 30*60*1000})
	aborted := appendKVs(t, l, CompressionGzip, 7, true, kv{"a1", pad, 2}, kv{"a2", pad, 2})
	appendMarker(t, l, 7, controlAbort, 3)
	committed := appendKVs(t, l, CompressionNone, 8, true, kv{"c1", pad, 4})
	appendMarker(t, l, 8, controlCommit, 5)
	// Producer 9: its last batch is fully superseded but must stay as an empty batch.
	p9 := appendKVs(t, l, CompressionNone, 9, false, kv{"dup", pad, 6})
	for i := 0; i < 12; i++ {
		appendKVs(t, l, CompressionNone, -1, false, kv{"dup", pad, int64(7 + i)}, kv{fmt.Sprint("f", i), pad, int64(7 + i)})
	}
	l.SetHighWatermark(l.EndOffset())
	if err := l.Compact(context.Background(), now); err != nil {
		t.Fatal(err)
	}
	recs, _, controls := logRecords(t, l)
	keys := map[string]offRec{}
	for _, r := range recs {
		keys[r.key] = r
	}
	if _, ok := keys["old"]; ok {
		t.Fatal("expired tombstone and its value survived")
	}
	if r, ok := keys["new"]; !ok || !r.nul {
		t.Fatal("recent tombstone dropped")
	}
	if _, ok := keys["live"]; !ok {
		t.Fatal("live key dropped")
	}
	if _, ok := keys["a1"]; ok {
		t.Fatalf("aborted record at %d survived", aborted)
	}
	if r, ok := keys["c1"]; !ok || r.off != committed {
		t.Fatal("committed record dropped")
	}
	if controls != 2 {
		t.Fatalf("control batches %d", controls)
	}
	// The emptied last batch of producer 9 is still there, with no records.
	sl, err := l.Read(p9, 1, l.EndOffset())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := sl.Bytes()
	sl.Release()
	h, _ := ParseBatchHeader(b)
	if h.BaseOffset != p9 || h.ProducerID != 9 || h.NumRecords != 0 || h.BaseSequence != int32(p9) {
		t.Fatalf("producer 9 batch: %+v", h)
	}
}

func TestCompactConcurrentWithAppends(t *testing.T) {
	cfg := compactConfig()
	l := mustOpen(t, t.TempDir(), cfg)
	defer l.Close()
	pad := bytes.Repeat([]byte("v"), 100)
	for i := 0; i < 60; i++ {
		appendKVs(t, l, CompressionSnappy, -1, false, kv{fmt.Sprint("k", i%10), pad, int64(i)})
	}
	l.SetHighWatermark(l.EndOffset())
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				if err := l.Compact(context.Background(), time.UnixMilli(0)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 40; i++ {
			sl, err := l.Read(l.LogStartOffset(), 4096, l.EndOffset())
			if err != nil {
				errs <- err
				return
			}
			if _, err := sl.Bytes(); err != nil {
				errs <- err
			}
			sl.Release()
		}
	}()
	for i := 60; i < 120; i++ {
		appendKVs(t, l, CompressionNone, -1, false, kv{fmt.Sprint("k", i%10), pad, int64(i)})
		l.SetHighWatermark(l.EndOffset())
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	recs, _, _ := logRecords(t, l)
	last := map[string]int64{}
	for _, r := range recs {
		last[r.key] = r.off
	}
	for k := 0; k < 10; k++ {
		if last[fmt.Sprint("k", k)] != int64(110+k) {
			t.Fatalf("key k%d newest at %d", k, last[fmt.Sprint("k", k)])
		}
	}
}

// TestCompactSwapRecovery leaves a finished ".swap" file as a crash between the swap steps would, and
// checks that Open completes the swap.
func TestCompactSwapRecovery(t *testing.T) {
	dir := t.TempDir()
	cfg := compactConfig()
	l := mustOpen(t, dir, cfg)
	pad := bytes.Repeat([]byte("v"), 100)
	for i := 0; i < 40; i++ {
		appendKVs(t, l, CompressionNone, -1, false, kv{fmt.Sprint("k", i%4), pad, int64(i)})
	}
	l.SetHighWatermark(l.EndOffset())
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	crashed := t.TempDir()
	copyDir(t, dir, crashed)
	big := cfg
	big.SegmentBytes = 1 << 20 // one output segment for all cleanable ones
	l = mustOpen(t, dir, big)
	if err := l.Compact(context.Background(), time.UnixMilli(0)); err != nil {
		t.Fatal(err)
	}
	want, _, _ := logRecords(t, l)
	first := (*l.segs.Load())[0]
	cleaned, err := os.ReadFile(first.logPath)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if err := os.WriteFile(filepath.Join(crashed, filepath.Base(first.logPath)+swapSuffix), cleaned, 0o644); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, crashed, cfg)
	defer l.Close()
	got, _, _ := logRecords(t, l)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after swap recovery: %d records, want %d", len(got), len(want))
	}
}

func TestCodecsRoundTrip(t *testing.T) {
	data := bytes.Repeat([]byte("kafka records "), 1000)
	for _, c := range []int8{CompressionNone, CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd} {
		enc, err := Compress(c, data)
		if err != nil {
			t.Fatal(err)
		}
		dec, err := Decompress(c, enc)
		if err != nil || !bytes.Equal(dec, data) {
			t.Fatalf("codec %d: %v", c, err)
		}
	}
	// Compress writes snappy in snappy-java's framing, as Kafka's broker
	// does; a raw block (franz-go, librdkafka) must read as well.
	if enc, _ := Compress(CompressionSnappy, data); !bytes.HasPrefix(enc, xerialMagic) {
		t.Fatal("snappy output is not xerial-framed")
	}
	block := s2.EncodeSnappy(nil, data)
	if dec, err := Decompress(CompressionSnappy, block); err != nil || !bytes.Equal(dec, data) {
		t.Fatalf("raw snappy block: %v", err)
	}
	x := append([]byte{}, xerialMagic...)
	x = binary.BigEndian.AppendUint32(x, 1)
	x = binary.BigEndian.AppendUint32(x, 1)
	x = binary.BigEndian.AppendUint32(x, uint32(len(block)))
	x = append(x, block...)
	if dec, err := Decompress(CompressionSnappy, x); err != nil || !bytes.Equal(dec, data) {
		t.Fatalf("xerial: %v", err)
	}
	if _, err := Decompress(6, data); !errors.Is(err, ErrUnsupportedCompression) {
		t.Fatalf("unknown codec: %v", err)
	}
}

// A small batch that inflates beyond MaxDecompressed is refused with
// ErrDecompressedTooLarge by every codec, before the memory is spent.
func TestDecompressLimit(t *testing.T) {
	big := make([]byte, MaxDecompressed+1)
	for _, c := range []int8{CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd} {
		enc, err := Compress(c, big)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Decompress(c, enc); !errors.Is(err, ErrDecompressedTooLarge) {
			t.Errorf("codec %d (%d compressed bytes): %v, want ErrDecompressedTooLarge", c, len(enc), err)
		}
	}
	// A raw snappy block announcing a huge length is refused from its header alone.
	if _, err := Decompress(CompressionSnappy, s2.EncodeSnappy(nil, big)); !errors.Is(err, ErrDecompressedTooLarge) {
		t.Errorf("raw snappy: %v", err)
	}
}

func TestCompactDirtyRatio(t *testing.T) {
	cfg := compactConfig()
	l := mustOpen(t, t.TempDir(), cfg)
	defer l.Close()
	pad := bytes.Repeat([]byte("v"), 100)
	i := 0
	add := func(n int) {
		for ; n > 0; n-- {
			appendKVs(t, l, CompressionNone, -1, false, kv{fmt.Sprint("k", i), pad, int64(i)})
			i++
		}
		l.SetHighWatermark(l.EndOffset())
	}
	compact := func() bool {
		before := slicesClone(*l.segs.Load())
		if err := l.Compact(context.Background(), time.UnixMilli(0)); err != nil {
			t.Fatal(err)
		}
		after := *l.segs.Load()
		if len(before) != len(after) {
			return true
		}
		for j := range before {
			if before[j] != after[j] {
				return true
			}
		}
		return false
	}
	add(60)
	if !compact() {
		t.Fatal("first compaction did nothing")
	}
	if compact() {
		t.Fatal("compaction without new data rewrote segments")
	}
	// A little new data: below the 0.5 dirty ratio once it rolls into a cleanable segment.
	add(12)
	if compact() {
		t.Fatal("compaction below the dirty ratio rewrote segments")
	}
	add(80)
	if !compact() {
		t.Fatal("compaction above the dirty ratio did nothing")
	}
}

func slicesClone[T any](s []T) []T { return append([]T(nil), s...) }

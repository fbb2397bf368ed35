package bench

import (
	"math"
	"testing"

	"github.com/stromhq/strom/storage"
)

func TestNextSequence(t *testing.T) {
	for _, tt := range []struct {
		s    int32
		n    int
		want int32
	}{
		{0, 1, 1},
		{5, 9000, 9005},
		{math.MaxInt32 - 1, 1, math.MaxInt32},
		{math.MaxInt32, 1, 0},
		{math.MaxInt32 - 2, 10, 7},
	} {
		if got := nextSequence(tt.s, tt.n); got != tt.want {
			t.Errorf("nextSequence(%d, %d) = %d, want %d", tt.s, tt.n, got, tt.want)
		}
	}
}

// TestLeanTemplate checks that every prefix the lean producer sends is a valid batch within the size
// limit: the header it stamps, the CRC, and the record count all agree with what a broker parses.
func TestLeanTemplate(t *testing.T) {
	for _, size := range []int{0, 100, 1024, 100_000, 2_000_000} {
		tmpl := newLeanTemplate(size)
		if tmpl.records < 1 || (tmpl.ends[tmpl.records-1] > batchMaxBytes && tmpl.records > 1) {
			t.Fatalf("size %d: %d records ending at %d", size, tmpl.records, tmpl.ends[tmpl.records-1])
		}
		buf := append([]byte(nil), tmpl.batch...)
		for _, n := range []int{1, tmpl.records/2 + 1, tmpl.records} {
			b := tmpl.stamp(buf, n, 42, 3, math.MaxInt32-1, 1_700_000_000_000)
			h, err := storage.ParseBatchHeader(b)
			if err != nil {
				t.Fatalf("size %d, %d records: %v", size, n, err)
			}
			if err := storage.VerifyCRC(b); err != nil {
				t.Fatalf("size %d, %d records: %v", size, n, err)
			}
			if h.Size() != len(b) || int(h.NumRecords) != n || int(h.LastOffsetDelta) != n-1 || h.ProducerID != 42 ||
				h.ProducerEpoch != 3 || h.BaseSequence != math.MaxInt32-1 || h.BaseTimestamp != 1_700_000_000_000 {
				t.Fatalf("size %d, %d records: header %+v, %d bytes", size, n, h, len(b))
			}
			if plain, _ := storage.ParseBatchHeader(tmpl.stamp(buf, n, -1, -1, 7, 0)); plain.BaseSequence != -1 || plain.ProducerID != -1 {
				t.Fatalf("size %d: batch without producer id: %+v", size, plain)
			}
			b = tmpl.stamp(buf, n, 42, 3, math.MaxInt32-1, 1_700_000_000_000)
			count := 0
			if err := storage.SplitBatches(b, func(storage.BatchHeader, []byte) bool { count++; return true }); err != nil || count != 1 {
				t.Fatalf("size %d, %d records: split %d batches, %v", size, n, count, err)
			}
		}
	}
}

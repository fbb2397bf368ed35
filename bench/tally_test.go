package bench

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestProduceTallyPublishes checks that acknowledgements reach the shared counters in groups, that a
// drained finish publishes the rest, and that every latency lands in the run's recorder.
func TestProduceTallyPublishes(t *testing.T) {
	var c counters
	tally := newProduceTally(&c)
	for range tallyPublish - 1 {
		tally.acked(3*time.Millisecond, 100)
	}
	if got := c.produced.Load(); got != 0 {
		t.Fatalf("published %d records before a full group", got)
	}
	tally.acked(3*time.Millisecond, 100)
	if got, gotB := c.produced.Load(), c.producedBytes.Load(); got != tallyPublish || gotB != 100*tallyPublish {
		t.Fatalf("after a full group: %d records, %d bytes; want %d, %d", got, gotB, tallyPublish, 100*tallyPublish)
	}
	tally.ackedN(50*time.Millisecond, 10, 1000) // a lean producer's batch
	tally.acked(7*time.Millisecond, 100)
	rec := NewRecorder()
	tally.finish(rec, true)
	if got, want := c.produced.Load(), int64(tallyPublish+11); got != want {
		t.Fatalf("after a drained finish: %d records, want %d", got, want)
	}
	if got, want := rec.Count(), int64(tallyPublish+11); got != want {
		t.Fatalf("recorder holds %d latencies, want %d", got, want)
	}
	if s := rec.Summary(); s.Max < 49 {
		t.Fatalf("max latency %v ms lost the batch's 50 ms", s.Max)
	}
}

// TestProduceTallyUndrained checks that a finish after a failed flush reads nothing the promise goroutine
// may still write, and still reports what was published.
func TestProduceTallyUndrained(t *testing.T) {
	var c counters
	tally := newProduceTally(&c)
	for range tallyPublish + 5 {
		tally.acked(time.Millisecond, 1)
	}
	rec := NewRecorder()
	tally.finish(rec, false)
	if got := rec.Count(); got != tallyPublish {
		t.Fatalf("recorder holds %d latencies, want the %d published", got, tallyPublish)
	}
}

// TestRecordRecycler checks that records put back come out again, and that get allocates when none
// are spare.
func TestRecordRecycler(t *testing.T) {
	var c recordRecycler
	seen := map[*kgo.Record]bool{}
	first := make([]*kgo.Record, 0, 2*recycleBatch)
	for range 2 * recycleBatch {
		r := c.get()
		if seen[r] {
			t.Fatal("get returned a record twice before any was put back")
		}
		seen[r] = true
		first = append(first, r)
	}
	for _, r := range first[:recycleBatch-1] {
		c.put(r)
	}
	if r := c.get(); seen[r] {
		t.Fatal("a record came back before a full group was handed over")
	}
	c.put(first[recycleBatch-1])
	for range recycleBatch {
		if r := c.get(); !seen[r] {
			t.Fatal("get allocated while a handed-over record was spare")
		}
	}
}

package broker

import (
	"testing"

	"github.com/stromhq/strom/broker/group"
	"github.com/stromhq/strom/storage"
)

// FuzzReplayMarker feeds arbitrary control batches (as read back from
// __consumer_offsets) to the marker replay: never a panic, and a batch that
// is a well-formed COMMIT moves the producer's pending offsets into the
// committed ones while anything else leaves committed offsets untouched.
func FuzzReplayMarker(f *testing.F) {
	f.Add(controlBatch(7, 1, true, 0, 1000))
	f.Add(controlBatch(7, 1, false, 0, 1000))
	f.Add([]byte{0, 1, 2})
	f.Fuzz(func(t *testing.T, batch []byte) {
		h, err := storage.ParseBatchHeader(batch)
		if err != nil || h.Size() > len(batch) {
			return
		}
		batch = batch[:h.Size()]
		tp := group.TopicPartition{Topic: "t", Partition: 0}
		pending := map[int64]map[string]map[group.TopicPartition]*group.Offset{
			h.ProducerID: {"g": {tp: &group.Offset{Offset: 5}}},
		}
		offsets := map[string]map[group.TopicPartition]*group.Offset{}
		replayMarker(h, batch, pending, offsets)
		commit, ok := markerIsCommit(h, batch)
		switch {
		case ok && commit:
			if offsets["g"][tp] == nil || offsets["g"][tp].Offset != 5 {
				t.Fatalf("commit marker did not materialize the offset: %v", offsets)
			}
		case len(offsets) != 0:
			t.Fatalf("non-commit batch changed committed offsets: %v", offsets)
		}
		if ok && pending[h.ProducerID] != nil {
			t.Fatal("marker left the producer's offsets pending")
		}
	})
}

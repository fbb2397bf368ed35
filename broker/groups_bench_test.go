package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkOffsetCommit measures synchronous OffsetCommit round trips of 10
// partitions each (one __consumer_offsets batch per commit), with the given
// flush policy: "always" waits for fsync before answering.
func BenchmarkOffsetCommit(b *testing.B) {
	for _, fsync := range []string{"never", "always"} {
		b.Run("fsync="+fsync, func(b *testing.B) {
			br := startTestBroker(b, func(c *Config) { groupTestConfig(c); c.Fsync = fsync })
			adm := newAdmin(b, br)
			createTopic(b, adm, "t", 10, nil)
			var recs []kgo.Record
			for p := range int32(10) {
				recs = append(recs, kgo.Record{Topic: "t", Partition: p})
			}
			b.ResetTimer()
			for i := range b.N {
				for j := range recs {
					recs[j].Offset = int64(i)
				}
				if _, err := adm.CommitOffsets(testCtx(b), "bench", kadm.OffsetsFromRecords(recs...)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

package broker

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// consumeAll reads every record of topic visible under the given isolation
// level up to the partitions' end (LSO for read_committed).
func consumeAll(t *testing.T, b *Broker, topic string, committed bool) []*kgo.Record {
	t.Helper()
	ctx := testCtx(t)
	iso := kgo.ReadUncommitted()
	if committed {
		iso = kgo.ReadCommitted()
	}
	adm := newAdmin(t, b)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if committed {
		ends, err = adm.ListCommittedOffsets(ctx, topic)
	}
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { want[o.Partition] = o.Offset })
	cl := newClient(t, b, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(iso), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var out []*kgo.Record
	pos := map[int32]int64{}
	done := func() bool {
		for p, end := range want {
			if pos[p] < end {
				return false
			}
		}
		return true
	}
	for !done() {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consume %s: %v (at %v, want %v, got %d records)", topic, err, pos, want, len(out))
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			// The end offset may be a marker that carries no record: the
			// bound the broker reported says the partition is read.
			if committed {
				pos[p.Partition] = max(pos[p.Partition], p.LastStableOffset)
			} else {
				pos[p.Partition] = max(pos[p.Partition], p.HighWatermark)
			}
			for _, r := range p.Records {
				pos[p.Partition] = max(pos[p.Partition], r.Offset+1)
			}
		})
	}
	return out
}

func TestTransactionsCommitAbort(t *testing.T) {
	b := startTestBroker(t, nil)
	ctx := testCtx(t)
	createTopic(t, newAdmin(t, b), "tx", 3, nil)
	cl := newClient(t, b, kgo.TransactionalID("tid-1"), kgo.DefaultProduceTopic("tx"))
	for i := 0; i < 6; i++ {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for j := 0; j < 10; j++ {
			r := &kgo.Record{Value: []byte(fmt.Sprintf("%d-%d", i, j)), Partition: int32(j % 3)}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("produce: %v (%s)", err, b.txns.describeTxnForTest("tid-1"))
			}
		}
		commit := kgo.TransactionEndTry(i%2 == 0)
		if err := cl.EndTransaction(ctx, commit); err != nil {
			t.Fatalf("end txn %d: %v", i, err)
		}
	}
	got := consumeAll(t, b, "tx", true)
	if len(got) != 30 {
		t.Fatalf("read_committed saw %d records, want 30", len(got))
	}
	for _, r := range got {
		var i, j int
		fmt.Sscanf(string(r.Value), "%d-%d", &i, &j)
		if i%2 != 0 {
			t.Fatalf("read_committed saw aborted record %s", r.Value)
		}
	}
	all := consumeAll(t, b, "tx", false)
	if len(all) != 60 {
		t.Fatalf("read_uncommitted saw %d records, want 60", len(all))
	}
}

var _ = errors.Is
var _ = kerr.InvalidTxnState
var _ context.Context

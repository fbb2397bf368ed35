package integration

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/integration/harness"
)

// TestProduceConsume is the basic contract every target must meet with an unmodified franz-go client:
// create a topic, produce keyed records, list start/end/timestamp offsets, read everything back with a
// direct consumer and with a consumer group, and find the group's committed offsets.
func TestProduceConsume(t *testing.T) {
	for _, tg := range clusters() {
		t.Run(tg.name, func(t *testing.T) {
			c := tg.start(t)
			produceConsumeScenario(t, c)
		})
	}
}

func produceConsumeScenario(t *testing.T, c harness.Cluster) {
	const n = 300
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl := newClient(t, c)
	adm := kadm.NewClient(cl)
	topic := uniqueName("scenario")
	createTopic(ctx, t, adm, topic, 3, int16(min(3, c.Nodes())), nil)

	tsBase := time.Now().Add(-time.Hour).Truncate(time.Second)
	rs := makeRecords(topic, 0, n, tsBase)
	produce(ctx, t, cl, rs)
	parts := byPartition(rs)
	if len(parts) < 2 {
		t.Errorf("300 keyed records landed in %d partition(s); want them spread over 3", len(parts))
	}
	for p, g := range parts {
		for i, r := range g {
			if r.Offset != int64(i) {
				t.Fatalf("partition %d: record %d got offset %d; offsets must be dense from 0", p, i, r.Offset)
			}
		}
	}

	t.Run("ListOffsets", func(t *testing.T) {
		starts, err := adm.ListStartOffsets(ctx, topic)
		if err != nil || starts.Error() != nil {
			t.Fatalf("list start offsets: %v / %v", err, starts.Error())
		}
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err != nil || ends.Error() != nil {
			t.Fatalf("list end offsets: %v / %v", err, ends.Error())
		}
		for p := int32(0); p < 3; p++ {
			s, _ := starts.Lookup(topic, p)
			e, _ := ends.Lookup(topic, p)
			if s.Offset != 0 || e.Offset != int64(len(parts[p])) {
				t.Errorf("partition %d: start %d end %d, want 0 and %d", p, s.Offset, e.Offset, len(parts[p]))
			}
		}
		// First offset at or after a timestamp: the 150th record's millisecond splits every partition.
		at := tsBase.Add(150 * time.Millisecond)
		after, err := adm.ListOffsetsAfterMilli(ctx, at.UnixMilli(), topic)
		if err != nil || after.Error() != nil {
			t.Fatalf("list offsets after %v: %v / %v", at, err, after.Error())
		}
		for p := int32(0); p < 3; p++ {
			want := int64(len(parts[p])) // no record that late: the end offset
			for _, r := range parts[p] {
				if !r.Timestamp.Before(at) {
					want = r.Offset
					break
				}
			}
			if got, _ := after.Lookup(topic, p); got.Offset != want {
				t.Errorf("partition %d: offset after %v = %d, want %d", p, at, got.Offset, want)
			}
		}
	})

	t.Run("Consume", func(t *testing.T) {
		got := byPartition(consumeN(ctx, t, c, topic, n))
		for p, want := range parts {
			if len(got[p]) != len(want) {
				t.Errorf("partition %d: consumed %d records, want %d", p, len(got[p]), len(want))
				continue
			}
			for i := range want {
				if err := sameRecord(got[p][i], want[i]); err != nil {
					t.Errorf("partition %d record %d: %v", p, i, err)
					break
				}
			}
		}
	})

	t.Run("ConsumerGroup", func(t *testing.T) {
		group := uniqueName("group")
		gc := newClient(t, c, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
		seen := 0
		for seen < n {
			fs := gc.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("group consume: %d of %d records before %v", seen, n, ctx.Err())
			}
			// kgo retries what is retriable; an error that reaches us (e.g. the broker lacks the group
			// APIs) will not go away by polling again.
			if err := fs.Err(); err != nil {
				t.Fatalf("group consume after %d of %d records: %v", seen, n, err)
			}
			seen += fs.NumRecords()
		}
		if seen != n {
			t.Errorf("group consumed %d records, want %d", seen, n)
		}
		if err := gc.CommitUncommittedOffsets(ctx); err != nil {
			t.Fatalf("commit: %v", err)
		}
		committed, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			t.Fatalf("fetch offsets of %s: %v", group, err)
		}
		for p := int32(0); p < 3; p++ {
			o, ok := committed.Lookup(topic, p)
			if !ok || o.Err != nil || o.At != int64(len(parts[p])) {
				t.Errorf("partition %d: committed %+v (found %v), want offset %d", p, o, ok, len(parts[p]))
			}
		}
	})
}

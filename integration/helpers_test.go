package integration

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/integration/harness"
)

// newClient returns a franz-go client seeded with every node of c, closed when t ends.
func newClient(t testing.TB, c harness.Cluster, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts = append([]kgo.Opt{kgo.SeedBrokers(strings.Split(c.Bootstrap(), ",")...)}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// newPollAdmin returns an admin client for loops that wait for a metadata change (a leader, an ISR, a
// topic): kadm reads metadata through franz-go's cache, which by default serves an answer for 5 s, so
// such a loop would see the state it waits on to change for up to 5 s more; this client's cache lives
// 10 ms.
func newPollAdmin(t testing.TB, c harness.Cluster) *kadm.Client {
	return kadm.NewClient(newClient(t, c, kgo.MetadataMinAge(10*time.Millisecond)))
}

// uniqueName returns prefix plus a random suffix, so tests sharing a cluster never share a topic or group.
func uniqueName(prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// createTopic creates topic and fails t on any error, including a per-topic one.
func createTopic(ctx context.Context, t testing.TB, adm *kadm.Client, topic string, partitions int32, rf int16,
	configs map[string]*string) {
	t.Helper()
	resp, err := adm.CreateTopic(ctx, partitions, rf, configs, topic)
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	if resp.Err != nil {
		t.Fatalf("create topic %s: %v", topic, resp.Err)
	}
}

// waitTopicEverywhere waits until every broker of cl's cluster lists topic with partitions partitions,
// each with a leader. A created topic reaches the brokers as the controller's metadata log does, a
// moment apart on each (on Kafka and Strom alike); a program that must find it on whichever broker it
// asks first (the mirror, which refuses to start when no source topic matches) starts after this.
func waitTopicEverywhere(ctx context.Context, t testing.TB, cl *kgo.Client, topic string, partitions int) {
	t.Helper()
	bs, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil {
		t.Fatalf("broker metadata: %v", err)
	}
	for _, b := range bs.Brokers {
		for {
			req := kmsg.NewPtrMetadataRequest()
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(topic)
			req.Topics = append(req.Topics, rt)
			resp, err := req.RequestWith(ctx, cl.Broker(int(b.NodeID)))
			if err == nil && len(resp.Topics) == 1 && resp.Topics[0].ErrorCode == 0 &&
				len(resp.Topics[0].Partitions) == partitions && !slices.ContainsFunc(resp.Topics[0].Partitions,
				func(p kmsg.MetadataResponseTopicPartition) bool { return p.Leader < 0 }) {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("broker %d does not list topic %s with %d led partitions: %v", b.NodeID, topic, partitions, ctx.Err())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
}

// makeRecords builds n records for topic with keys k-0000.., values v-0000.. and timestamps tsBase+i ms.
func makeRecords(topic string, from, n int, tsBase time.Time) []*kgo.Record {
	rs := make([]*kgo.Record, n)
	for i := range rs {
		j := from + i
		rs[i] = &kgo.Record{
			Topic:     topic,
			Key:       fmt.Appendf(nil, "k-%04d", j),
			Value:     fmt.Appendf(nil, "v-%04d", j),
			Timestamp: tsBase.Add(time.Duration(j) * time.Millisecond),
			Headers:   []kgo.RecordHeader{{Key: "i", Value: fmt.Appendf(nil, "%d", j)}},
		}
	}
	return rs
}

// produce sends rs synchronously and fails t on the first error; the records come back with their
// partitions and offsets filled in.
func produce(ctx context.Context, t testing.TB, cl *kgo.Client, rs []*kgo.Record) {
	t.Helper()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce %d records: %v", len(rs), err)
	}
}

// byPartition groups records by partition, each group sorted by offset.
func byPartition(rs []*kgo.Record) map[int32][]*kgo.Record {
	m := map[int32][]*kgo.Record{}
	for _, r := range rs {
		m[r.Partition] = append(m[r.Partition], r)
	}
	for _, g := range m {
		slices.SortFunc(g, func(a, b *kgo.Record) int { return int(a.Offset - b.Offset) })
	}
	return m
}

// consumeN reads topic from the start with a direct (group-less) consumer until it has want records,
// failing t if ctx ends first.
func consumeN(ctx context.Context, t testing.TB, c harness.Cluster, topic string, want int,
	opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	opts = append([]kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)
	cl := newClient(t, c, opts...)
	defer cl.Close()
	var got []*kgo.Record
	for len(got) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consume %s: got %d of %d records before %v", topic, len(got), want, ctx.Err())
		}
		if err := fs.Err(); err != nil { // kgo retried what is retriable
			t.Fatalf("consume %s after %d of %d records: %v", topic, len(got), want, err)
		}
		got = append(got, fs.Records()...)
	}
	return got
}

// sameRecord reports how got differs from want in key, value, headers, timestamp, partition, offset.
func sameRecord(got, want *kgo.Record) error {
	switch {
	case string(got.Key) != string(want.Key):
		return fmt.Errorf("key %q, want %q", got.Key, want.Key)
	case string(got.Value) != string(want.Value):
		return fmt.Errorf("value %q, want %q", got.Value, want.Value)
	case !got.Timestamp.Equal(want.Timestamp):
		return fmt.Errorf("timestamp %v, want %v", got.Timestamp, want.Timestamp)
	case got.Partition != want.Partition || got.Offset != want.Offset:
		return fmt.Errorf("at %d/%d, want %d/%d", got.Partition, got.Offset, want.Partition, want.Offset)
	case len(got.Headers) != len(want.Headers):
		return fmt.Errorf("%d headers, want %d", len(got.Headers), len(want.Headers))
	}
	for i := range got.Headers {
		if got.Headers[i].Key != want.Headers[i].Key || string(got.Headers[i].Value) != string(want.Headers[i].Value) {
			return fmt.Errorf("header %d = %q:%q, want %q:%q", i, got.Headers[i].Key, got.Headers[i].Value,
				want.Headers[i].Key, want.Headers[i].Value)
		}
	}
	return nil
}

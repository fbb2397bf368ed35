package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestProduceBasic(t *testing.T) {
	b := startTestBroker(t, nil)
	adm := newAdmin(t, b)
	createTopic(t, adm, "t1", 3, nil)
	cl := newClient(t, b, kgo.DefaultProduceTopic("t1"))
	for i := 0; i < 10; i++ {
		r := &kgo.Record{Value: []byte("hello"), Partition: int32(i % 3)}
		if err := cl.ProduceSync(testCtx(t), r).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
}

// With fsync=always the high watermark follows what is durable; acks=0/1
// writes become visible once the background sync covers them.
func TestFsyncAlwaysVisibility(t *testing.T) {
	b := startTestBroker(t, func(c *Config) { c.Fsync = "always" })
	createTopic(t, newAdmin(t, b), "dur", 1, nil)
	for _, acks := range []kgo.Acks{kgo.NoAck(), kgo.LeaderAck(), kgo.AllISRAcks()} {
		cl := newClient(t, b, kgo.DefaultProduceTopic("dur"), kgo.RequiredAcks(acks), kgo.DisableIdempotentWrite())
		if err := cl.ProduceSync(testCtx(t), &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	got := consumeN(t, b, "dur", 3)
	p := b.parts.get("dur", 0)
	if len(got) != 3 || p.log.HighWatermark() != 3 || p.log.RecoveryPoint() < 3 {
		t.Fatalf("got %d records, hw %d, recovery point %d", len(got), p.log.HighWatermark(), p.log.RecoveryPoint())
	}
}

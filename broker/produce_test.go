package broker

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestProduceBasic(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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

// TestAutoCreateRaceLeaderWritable: several clients whose Metadata requests
// auto-create the same topic at once each produce at once to the leader their
// answer names; none may be told NOT_LEADER_OR_FOLLOWER because the request
// that lost the creation race answered before the partitions were open.
func TestAutoCreateRaceLeaderWritable(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, nil)
	ctx := testCtx(t)
	const clients = 6
	cls := make([]*kgo.Client, clients)
	for i := range cls {
		cls[i] = newClient(t, b)
	}
	for round := range 10 {
		topic := fmt.Sprintf("race-%d", round)
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		for _, cl := range cls {
			wg.Add(1)
			go func() {
				defer wg.Done()
				mreq := kmsg.NewPtrMetadataRequest()
				mt := kmsg.NewMetadataRequestTopic()
				mt.Topic = kmsg.StringPtr(topic)
				mreq.Topics = append(mreq.Topics, mt)
				mreq.AllowAutoTopicCreation = true
				mresp, err := mreq.RequestWith(ctx, cl)
				if err != nil {
					errs <- err
					return
				}
				if len(mresp.Topics) != 1 || mresp.Topics[0].ErrorCode != 0 || len(mresp.Topics[0].Partitions) == 0 ||
					mresp.Topics[0].Partitions[0].Leader != b.cfg.NodeID {
					return // no leader named yet: the client would ask again, nothing to check
				}
				preq := kmsg.NewPtrProduceRequest()
				preq.Acks, preq.TimeoutMillis = 1, 5000
				pt := kmsg.NewProduceRequestTopic()
				pt.Topic, pt.TopicID = topic, mresp.Topics[0].TopicID // v13 names topics by id
				pp := kmsg.NewProduceRequestTopicPartition()
				pp.Records = buildBatch([]record{{value: []byte("v")}}, time.Now().UnixMilli())
				pt.Partitions = append(pt.Partitions, pp)
				preq.Topics = append(preq.Topics, pt)
				presp, err := preq.RequestWith(ctx, cl.Broker(int(b.cfg.NodeID)))
				if err != nil {
					errs <- err
					return
				}
				if e := kerr.ErrorForCode(presp.Topics[0].Partitions[0].ErrorCode); e != nil {
					errs <- fmt.Errorf("produce to the leader Metadata named: %w", e)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: %v", round, err)
		}
	}
}

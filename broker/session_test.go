package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

func fetchReq(sessionID, epoch int32, parts map[int32]int64) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.MaxBytes, req.SessionID, req.SessionEpoch = 1<<20, sessionID, epoch
	if len(parts) > 0 {
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "sess"
		for p, off := range parts {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p, off, 1<<20
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	return req
}

func partsIn(resp *kmsg.FetchResponse) map[int32]kmsg.FetchResponseTopicPartition {
	out := map[int32]kmsg.FetchResponseTopicPartition{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			out[p.Partition] = p
		}
	}
	return out
}

func TestFetchSessions(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, func(c *Config) { c.FetchSessionCacheSlots = 2 })
	adm := newAdmin(t, b)
	createTopic(t, adm, "sess", 2, nil)
	cl := newClient(t, b, kgo.MaxVersions(kversion.V3_0_0()))
	prod := newClient(t, b, kgo.DefaultProduceTopic("sess"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx := testCtx(t)
	produceTo := func(p int32) {
		if err := prod.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produceTo(0)
	produceTo(1)

	// Full fetch creating a session: every partition is answered.
	resp, err := fetchReq(0, 0, map[int32]int64{0: 0, 1: 0}).RequestWith(ctx, cl)
	if err != nil || resp.ErrorCode != 0 || resp.SessionID == 0 {
		t.Fatalf("create session: %v code %d id %d", err, resp.ErrorCode, resp.SessionID)
	}
	if got := partsIn(resp); len(got) != 2 {
		t.Fatalf("full fetch answered %d partitions", len(got))
	}
	id := resp.SessionID
	// Incremental fetch, positions moved to the end: nothing changed, so
	// nothing is answered.
	resp, _ = fetchReq(id, 1, map[int32]int64{0: 1, 1: 1}).RequestWith(ctx, cl)
	if resp.ErrorCode != 0 || len(partsIn(resp)) != 0 {
		t.Fatalf("idle incremental fetch: code %d parts %d", resp.ErrorCode, len(partsIn(resp)))
	}
	// New data on partition 1 only: only it is answered.
	produceTo(1)
	resp, _ = fetchReq(id, 2, nil).RequestWith(ctx, cl)
	got := partsIn(resp)
	if len(got) != 1 || len(got[1].RecordBatches) == 0 || got[1].HighWatermark != 2 {
		t.Fatalf("incremental after produce to 1: %+v", got)
	}
	// Wrong epoch and unknown session.
	resp, _ = fetchReq(id, 7, nil).RequestWith(ctx, cl)
	if resp.ErrorCode != kerr.InvalidFetchSessionEpoch.Code {
		t.Fatalf("wrong epoch: code %d", resp.ErrorCode)
	}
	resp, _ = fetchReq(id+1, 1, nil).RequestWith(ctx, cl)
	if resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("unknown session: code %d", resp.ErrorCode)
	}
	// Forgetting partition 1: later data on it is not reported.
	fr := fetchReq(id, 3, nil)
	ft := kmsg.NewFetchRequestForgottenTopic()
	ft.Topic, ft.Partitions = "sess", []int32{1}
	fr.ForgottenTopics = append(fr.ForgottenTopics, ft)
	if resp, _ = fr.RequestWith(ctx, cl); resp.ErrorCode != 0 {
		t.Fatalf("forget: code %d", resp.ErrorCode)
	}
	produceTo(1)
	produceTo(0)
	resp, _ = fetchReq(id, 4, map[int32]int64{0: 1}).RequestWith(ctx, cl)
	if got := partsIn(resp); len(got) != 1 || got[0].HighWatermark != 2 {
		t.Fatalf("after forgetting 1: %+v", got)
	}
	// Closing with epoch -1 answers sessionless and removes the session.
	resp, _ = fetchReq(id, -1, map[int32]int64{0: 0}).RequestWith(ctx, cl)
	if resp.SessionID != 0 || len(partsIn(resp)) != 1 {
		t.Fatalf("close: session %d parts %d", resp.SessionID, len(partsIn(resp)))
	}
	if resp, _ = fetchReq(id, 5, nil).RequestWith(ctx, cl); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("closed session still usable: code %d", resp.ErrorCode)
	}
	// Eviction: two slots. A third session evicts a smaller one; an equal
	// sized one finds no room while the others are fresh.
	small, _ := fetchReq(0, 0, map[int32]int64{0: 0}).RequestWith(ctx, cl)
	big, _ := fetchReq(0, 0, map[int32]int64{0: 0, 1: 0}).RequestWith(ctx, cl)
	bigger, _ := fetchReq(0, 0, map[int32]int64{0: 0, 1: 0}).RequestWith(ctx, cl)
	if small.SessionID == 0 || big.SessionID == 0 || bigger.SessionID == 0 {
		t.Fatalf("sessions %d %d %d", small.SessionID, big.SessionID, bigger.SessionID)
	}
	if b.sessions.get(small.SessionID) != nil {
		t.Fatal("smaller session was not evicted for a larger one")
	}
	none, _ := fetchReq(0, 0, map[int32]int64{0: 0}).RequestWith(ctx, cl)
	if none.SessionID != 0 {
		t.Fatal("a session was created although every slot holds a larger fresh session")
	}
	// A session idle past the eviction time gives way to anyone.
	s := b.sessions.get(big.SessionID)
	s.mu.Lock()
	s.lastUsed = time.Now().Add(-2 * fetchSessionEvictIdle)
	s.mu.Unlock()
	if again, _ := fetchReq(0, 0, map[int32]int64{0: 0}).RequestWith(ctx, cl); again.SessionID == 0 {
		t.Fatal("idle session was not evicted")
	}
}

func TestLogAppendTimeAndTopicCompression(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, nil)
	adm := newAdmin(t, b)
	lat, zstd := "LogAppendTime", "zstd"
	createTopic(t, adm, "lat", 1, map[string]*string{"message.timestamp.type": &lat, "compression.type": &zstd})
	prod := newClient(t, b, kgo.DefaultProduceTopic("lat"), kgo.ProducerBatchCompression(kgo.GzipCompression()))
	before := time.Now().Add(-time.Second)
	old := time.Now().Add(-24 * time.Hour)
	res := prod.ProduceSync(testCtx(t), &kgo.Record{Value: []byte("a"), Timestamp: old}, &kgo.Record{Value: []byte("b"), Timestamp: old})
	if err := res.FirstErr(); err != nil {
		t.Fatal(err)
	}
	got := consumeN(t, b, "lat", 2)
	for _, r := range got {
		if r.Timestamp.Before(before) || r.Attrs.TimestampType() != 1 {
			t.Fatalf("record %q: timestamp %v type type %d", r.Value, r.Timestamp, r.Attrs.TimestampType())
		}
		if r.Attrs.CompressionType() != 4 {
			t.Fatalf("record %q stored with codec %d, want zstd (4)", r.Value, r.Attrs.CompressionType())
		}
	}
}

package broker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/stromhq/strom/storage"
)

func idemBatch(pid int64, epoch int16, seq int32, n int) []byte {
	now := time.Now().UnixMilli()
	return mkBatch(n, now, func(h *storage.BatchHeader, _ []storage.Record) {
		h.ProducerID, h.ProducerEpoch, h.BaseSequence = pid, epoch, seq
	})
}

// produceOne sends batch to topic/0 and returns the partition answer.
func produceOne(t *testing.T, cl *kgo.Client, topic string, acks int16, batch []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = acks, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testCtx(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0]
}

func TestIdempotentProduce(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, func(c *Config) { c.Fsync = "always" })
	adm := newAdmin(t, b)
	createTopic(t, adm, "idem", 1, nil)
	cl := newClient(t, b, kgo.MaxVersions(kversion.V4_0_0()))
	ctx := testCtx(t)
	ip, err := kmsg.NewPtrInitProducerIDRequest().RequestWith(ctx, cl)
	if err != nil || ip.ErrorCode != 0 || ip.ProducerID < 0 || ip.ProducerEpoch != 0 {
		t.Fatalf("init producer id: %v %+v", err, ip)
	}
	ip2, _ := kmsg.NewPtrInitProducerIDRequest().RequestWith(ctx, cl)
	if ip2.ProducerID == ip.ProducerID {
		t.Fatal("two InitProducerId calls returned the same id")
	}
	pid := ip.ProducerID
	steps := []struct {
		name     string
		batch    []byte
		want     *kerr.Error
		wantBase int64
	}{
		{"first", idemBatch(pid, 0, 0, 3), nil, 0},
		{"second", idemBatch(pid, 0, 3, 2), nil, 3},
		{"retry of first is a duplicate", idemBatch(pid, 0, 0, 3), nil, 0},
		{"retry of second is a duplicate", idemBatch(pid, 0, 3, 2), nil, 3},
		{"gap", idemBatch(pid, 0, 9, 1), kerr.OutOfOrderSequenceNumber, -1},
		{"next", idemBatch(pid, 0, 5, 1), nil, 5},
		{"bumped epoch from 0", idemBatch(pid, 1, 0, 1), nil, 6},
		{"fenced old epoch", idemBatch(pid, 0, 6, 1), kerr.InvalidProducerEpoch, -1},
		{"other producer starts anywhere", idemBatch(ip2.ProducerID, 0, 100, 1), nil, 7},
	}
	for _, s := range steps {
		p := produceOne(t, cl, "idem", -1, s.batch)
		if got := kerr.ErrorForCode(p.ErrorCode); got != errOrNil(s.want) {
			t.Fatalf("%s: error %v, want %v", s.name, got, s.want)
		}
		if s.want == nil && p.BaseOffset != s.wantBase {
			t.Fatalf("%s: base offset %d, want %d", s.name, p.BaseOffset, s.wantBase)
		}
	}
	if end := b.parts.get("idem", 0).log.EndOffset(); end != 8 {
		t.Fatalf("end offset %d, want 8 (duplicates must not be appended)", end)
	}
	// DescribeProducers reports both producers with their last sequence.
	dp, err := kadm.NewClient(cl).DescribeProducers(ctx, kadm.TopicsSet{"idem": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	found := map[int64]kadm.DescribedProducer{}
	dp.EachProducer(func(d kadm.DescribedProducer) { found[d.ProducerID] = d })
	if d, ok := found[ip.ProducerID]; !ok || d.ProducerEpoch != 1 || d.LastSequence != 0 {
		t.Fatalf("describe producers: %+v", found)
	}
	if _, ok := found[ip2.ProducerID]; !ok {
		t.Fatal("second producer missing from DescribeProducers")
	}
	// kgo's own idempotent producer works end to end.
	prod := newClient(t, b, kgo.DefaultProduceTopic("idem"))
	if err := prod.ProduceSync(context.Background(), &kgo.Record{Value: []byte("kgo")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func TestProduceOldFormatsAndAcks(t *testing.T) {
	b := startTestBroker(t, nil)
	adm := newAdmin(t, b)
	createTopic(t, adm, "fmt", 1, nil)
	// A magic 1 message set (offset, size, crc, magic=1, attributes, ...).
	magic1 := make([]byte, 34)
	binary32(magic1[8:], 22)
	magic1[16] = 1
	for _, tc := range []struct {
		version int16
		want    *kerr.Error
	}{{2, kerr.UnsupportedForMessageFormat}, {3, kerr.InvalidRecord}, {9, kerr.InvalidRecord}} {
		cl := newClient(t, b, kgo.MaxVersions(pinProduce(tc.version)))
		p := produceOne(t, cl, "fmt", 1, magic1)
		if got := kerr.ErrorForCode(p.ErrorCode); got != tc.want {
			t.Fatalf("produce v%d magic 1: %v, want %v", tc.version, got, tc.want)
		}
	}
	// acks=0 with an error: no answer, the connection is closed.
	nc := dial(t, b)
	req := kmsg.NewPtrProduceRequest()
	req.Acks = 0
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "no-such-topic"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = mkBatch(1, time.Now().UnixMilli(), nil)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	nc.Write(frameOf(req, 9, 1))
	expectClosed(t, nc)
	// acks=0 without error: no answer, connection stays; the next request is
	// answered with its own correlation id.
	nc = dial(t, b)
	req.Topics[0].Topic = "fmt"
	nc.Write(frameOf(req, 9, 2))
	nc.Write(frameOf(kmsg.NewPtrApiVersionsRequest(), 0, 3))
	readResponse(t, nc, 3)
	// Invalid acks (sent raw: kgo normalizes acks).
	nc = dial(t, b)
	req.Acks = 2
	nc.Write(frameOf(req, 9, 4))
	pr := kmsg.NewPtrProduceResponse()
	pr.Version = 9
	if err := pr.ReadFrom(readResponse(t, nc, 4)[1:]); err != nil { // skip the header's empty tag section
		t.Fatal(err)
	}
	if c := pr.Topics[0].Partitions[0].ErrorCode; c != kerr.InvalidRequiredAcks.Code {
		t.Fatalf("acks=2: code %d", c)
	}
}

func binary32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
}

// pinProduce returns Kafka 4.0's versions with Produce capped at v.
func pinProduce(v int16) *kversion.Versions {
	vs := kversion.V4_0_0()
	vs.SetMaxKeyVersion(0, v)
	return vs
}

// TestAppendOnlyWhileLeading: a request looks leadership up before it takes
// the partition lock, so the append itself checks that this replica still
// leads the epoch it stamps. A replica that has become a follower in between
// answers NOT_LEADER_OR_FOLLOWER (nothing was written, the client may send
// the batch again as new) and its log, now the new leader's copy, is left
// alone; the coordinators' own appends are refused the same way.
func TestAppendOnlyWhileLeading(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, nil)
	createTopic(t, newAdmin(t, b), "lead", 1, nil)
	cl := newClient(t, b, kgo.MaxVersions(kversion.V4_0_0())) // produceOne names topics, not ids
	if got := produceOne(t, cl, "lead", -1, mkBatch(2, time.Now().UnixMilli(), nil)); got.ErrorCode != 0 {
		t.Fatalf("produce while leading: %v", kerr.ErrorForCode(got.ErrorCode))
	}
	p := b.parts.get("lead", 0)
	end := p.log.EndOffset()
	p.stopLeading() // as reconcile does when another replica takes over
	for _, acks := range []int16{1, -1} {
		got := produceOne(t, cl, "lead", acks, mkBatch(2, time.Now().UnixMilli(), nil))
		if got.ErrorCode != kerr.NotLeaderForPartition.Code {
			t.Errorf("acks=%d produce after leadership moved: %v, want NOT_LEADER_OR_FOLLOWER", acks, kerr.ErrorForCode(got.ErrorCode))
		}
	}
	if _, err := appendInternal(p, mkBatch(1, time.Now().UnixMilli(), nil)); !errors.Is(err, errNotLeading) {
		t.Errorf("internal append after leadership moved: %v, want errNotLeading", err)
	}
	if e := p.log.EndOffset(); e != end {
		t.Fatalf("the follower's log grew from %d to %d", end, e)
	}
}

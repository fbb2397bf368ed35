package broker

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stromhq/strom/storage"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kversion"
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

// txnVersions are the two transaction protocols clients speak: version 1
// (explicit AddPartitionsToTxn, one epoch for many transactions; kgo falls
// back to it when capped below Produce v12 / EndTxn v5) and version 2
// (KIP-890 part 2, what kgo uses against a broker finalizing
// transaction.version 2).
var txnVersions = []struct {
	name string
	opts []kgo.Opt
}{
	{"tv1", []kgo.Opt{kgo.MaxVersions(kversion.V3_9_0())}},
	{"tv2", nil},
}

func TestTransactionsCommitAbort(t *testing.T) {
	t.Parallel()
	for _, tv := range txnVersions {
		t.Run(tv.name, func(t *testing.T) {
			t.Parallel()
			testTransactionsCommitAbort(t, tv.name, tv.opts)
		})
	}
}

func testTransactionsCommitAbort(t *testing.T, tv string, opts []kgo.Opt) {
	b := startTestBroker(t, nil)
	ctx := testCtx(t)
	createTopic(t, newAdmin(t, b), "tx", 3, nil)
	cl := newClient(t, b, append([]kgo.Opt{kgo.TransactionalID("tid-1"), kgo.DefaultProduceTopic("tx"),
		kgo.RecordPartitioner(kgo.ManualPartitioner())}, opts...)...)
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
	last := map[int32]int{}
	for _, r := range got {
		var i, j int
		fmt.Sscanf(string(r.Value), "%d-%d", &i, &j)
		if i%2 != 0 {
			t.Fatalf("read_committed saw aborted record %s", r.Value)
		}
		// In order within a partition.
		if k := i*10 + j; k < last[r.Partition] {
			t.Fatalf("partition %d: %s after %d", r.Partition, r.Value, last[r.Partition])
		} else {
			last[r.Partition] = k
		}
	}
	all := consumeAll(t, b, "tx", false)
	if len(all) != 60 {
		t.Fatalf("read_uncommitted saw %d records, want 60", len(all))
	}
	// Version 2 bumps the epoch at every end; version 1 keeps it.
	ds, err := newAdmin(t, b).DescribeTransactions(ctx, "tid-1")
	if err != nil {
		t.Fatal(err)
	}
	want := int16(0)
	if tv == "tv2" {
		want = 6
	}
	if d := ds["tid-1"]; d.ProducerEpoch != want || d.State != "CompleteAbort" {
		t.Fatalf("%s: after 6 transactions state %s epoch %d, want CompleteAbort epoch %d", tv, d.State, d.ProducerEpoch, want)
	}
	// Each partition's producer carries the coordinator epoch of its last
	// marker: the leader epoch of the id's __transaction_state partition.
	st := b.node.State()
	tt := st.Topics[txnTopic]
	coordEpoch := tt.Partitions[groupPartition("tid-1", len(tt.Partitions))].LeaderEpoch
	dp, err := newAdmin(t, b).DescribeProducers(ctx, kadm.TopicsSet{"tx": {0: {}, 1: {}, 2: {}}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	dp.EachProducer(func(p kadm.DescribedProducer) {
		n++
		if p.CoordinatorEpoch != coordEpoch || p.CurrentTxnStartOffset != -1 {
			t.Errorf("%s: partition %d producer %+v, want coordinator epoch %d and no open transaction", tv, p.Partition, p, coordEpoch)
		}
	})
	if n != 3 {
		t.Fatalf("%s: DescribeProducers listed %d producers, want one per partition", tv, n)
	}
}

// TestTransactionsZombieFenced: a second producer with the same
// transactional id aborts the first one's open transaction and fences it.
func TestTransactionsZombieFenced(t *testing.T) {
	t.Parallel()
	for _, tv := range txnVersions {
		t.Run(tv.name, func(t *testing.T) {
			t.Parallel()
			testTransactionsZombieFenced(t, tv.opts)
		})
	}
}

func testTransactionsZombieFenced(t *testing.T, opts []kgo.Opt) {
	b := startTestBroker(t, nil)
	ctx := testCtx(t)
	createTopic(t, newAdmin(t, b), "z", 1, nil)
	zombie := newClient(t, b, append([]kgo.Opt{kgo.TransactionalID("zid"), kgo.DefaultProduceTopic("z")}, opts...)...)
	if err := zombie.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := zombie.ProduceSync(ctx, &kgo.Record{Value: []byte("zombie")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	fresh := newClient(t, b, append([]kgo.Opt{kgo.TransactionalID("zid"), kgo.DefaultProduceTopic("z")}, opts...)...)
	if err := fresh.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	// Producing makes the new instance initialize, which aborts the
	// zombie's open transaction.
	if err := fresh.ProduceSync(ctx, &kgo.Record{Value: []byte("fresh")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	err := zombie.ProduceSync(ctx, &kgo.Record{Value: []byte("zombie-2")}).FirstErr()
	if err == nil {
		err = zombie.EndTransaction(ctx, kgo.TryCommit)
	}
	if !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) && !errors.Is(err, kerr.InvalidTxnState) {
		t.Fatalf("zombie was not fenced: %v", err)
	}
	if err := fresh.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	got := consumeAll(t, b, "z", true)
	if len(got) != 1 || string(got[0].Value) != "fresh" {
		var vs []string
		for _, r := range got {
			vs = append(vs, string(r.Value))
		}
		t.Fatalf("read_committed saw %v, want [fresh]", vs)
	}
}

// TestTransactionTimeout: an open transaction older than its timeout is
// aborted by the coordinator, the producer is fenced, and the last stable
// offset moves past it.
func TestTransactionTimeout(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, func(c *Config) { c.TransactionAbortCheckInterval = 50 * time.Millisecond })
	ctx := testCtx(t)
	adm := newAdmin(t, b)
	createTopic(t, adm, "to", 1, nil)
	cl := newClient(t, b, kgo.TransactionalID("slow"), kgo.DefaultProduceTopic("to"), kgo.TransactionTimeout(200*time.Millisecond))
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("late")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for {
		ds, err := adm.DescribeTransactions(ctx, "slow")
		if err != nil {
			t.Fatal(err)
		}
		if d, ok := ds["slow"]; ok && d.State == "CompleteAbort" {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("transaction never aborted: %s", b.txns.describeTxnForTest("slow"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	err := cl.EndTransaction(ctx, kgo.TryCommit)
	if !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("commit after timeout: %v", err)
	}
	ends, err := adm.ListCommittedOffsets(ctx, "to")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup("to", 0); o.Offset != 2 {
		t.Fatalf("read_committed end offset %d, want 2 (record and abort marker)", o.Offset)
	}
	// A new instance commits one record; it is all read_committed shows.
	next := newClient(t, b, kgo.TransactionalID("slow"), kgo.DefaultProduceTopic("to"))
	if err := next.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := next.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := next.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if got := consumeAll(t, b, "to", true); len(got) != 1 || string(got[0].Value) != "after" {
		t.Fatalf("read_committed saw %d records, want only the committed one", len(got))
	}
}

// TestTransactionReadCommittedLSO: an open transaction holds the last
// stable offset (ListOffsets read_committed and fetch) at its first offset.
func TestTransactionReadCommittedLSO(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, nil)
	ctx := testCtx(t)
	adm := newAdmin(t, b)
	createTopic(t, adm, "lso", 1, nil)
	plain := newClient(t, b, kgo.DefaultProduceTopic("lso"))
	tx := newClient(t, b, kgo.TransactionalID("lso-tx"), kgo.DefaultProduceTopic("lso"))
	produce := func(cl *kgo.Client, v string) {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce(plain, "p0")
	if err := tx.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produce(tx, "t1")
	produce(plain, "p2")
	check := func(wantLSO, wantHW int64) {
		t.Helper()
		lso, err := adm.ListCommittedOffsets(ctx, "lso")
		if err != nil {
			t.Fatal(err)
		}
		hw, err := adm.ListEndOffsets(ctx, "lso")
		if err != nil {
			t.Fatal(err)
		}
		l, _ := lso.Lookup("lso", 0)
		h, _ := hw.Lookup("lso", 0)
		if l.Offset != wantLSO || h.Offset != wantHW {
			t.Fatalf("LSO %d HW %d, want %d %d", l.Offset, h.Offset, wantLSO, wantHW)
		}
	}
	check(1, 3)
	if err := tx.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	check(4, 4)
	got := consumeAll(t, b, "lso", true)
	if len(got) != 3 {
		t.Fatalf("read_committed saw %d records, want 3", len(got))
	}
}

// logTxnPartition logs every batch of b's replica of topic/part (offsets,
// producer id and epoch, COMMIT/ABORT for markers, the first value for
// data), its aborted-transaction list and the LSO, so that a transaction
// test reporting a missing or partial transaction shows whether the
// records were lost, never written, or hidden by an abort.
func logTxnPartition(t *testing.T, b *Broker, topic string, part int32) {
	t.Helper()
	p := b.parts.get(topic, part)
	if p == nil {
		t.Logf("%s-%d: not hosted", topic, part)
		return
	}
	l := p.log
	var lines []string
	for off := l.LogStartOffset(); off < l.EndOffset(); {
		sl, err := l.Read(off, 1<<20, l.EndOffset())
		if err != nil {
			t.Logf("%s-%d: read at %d: %v", topic, part, off, err)
			return
		}
		data, err := sl.Bytes()
		sl.Release()
		if err != nil || len(data) == 0 {
			t.Logf("%s-%d: read at %d: %d bytes, %v", topic, part, off, len(data), err)
			return
		}
		for len(data) >= batchHeaderSize {
			h, err := storage.ParseBatchHeader(data)
			if err != nil || h.Size() > len(data) {
				t.Logf("%s-%d: bad batch at %d: %v", topic, part, off, err)
				return
			}
			what := ""
			_, _ = parseRecords(data[batchHeaderSize:h.Size()], func(i int, r recordView) error {
				switch {
				case i > 0:
				case h.IsControl() && len(r.key) == 4 && r.key[3] == 1:
					what = "COMMIT"
				case h.IsControl():
					what = "ABORT"
				default:
					what = string(r.value)
				}
				return nil
			})
			lines = append(lines, fmt.Sprintf("[%d-%d] pid=%d epoch=%d txn=%v %s",
				h.BaseOffset, h.LastOffset(), h.ProducerID, h.ProducerEpoch, h.IsTransactional(), what))
			off = h.LastOffset() + 1
			data = data[h.Size():]
		}
	}
	ab, err := l.AbortedTransactions(l.LogStartOffset(), l.EndOffset())
	lso, open := l.FirstUnstableOffset()
	t.Logf("%s-%d: end %d, hw %d, first unstable %d (%v), aborted %+v (%v)\n%s", topic, part, l.EndOffset(),
		l.HighWatermark(), lso, open, ab, err, strings.Join(lines, "\n"))
}

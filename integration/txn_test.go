package integration

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/integration/harness"
)

// txnOutcome is what a client can observe of the transactional scenario; it
// must be the same on every target.
type txnOutcome struct {
	Committed []string           // read_committed records as "partition/offset=value", in order
	Ends      map[int32][2]int64 // partition -> {last stable offset, high watermark}
	Zombie    string             // the error class the fenced producer saw
}

// TestTransactions runs one transactional scenario (commits, an abort, a
// fenced zombie, an open transaction holding the last stable offset) on
// Apache Kafka and on Strom and requires identical observations: the same
// committed records at the same offsets (markers take offsets alike), the
// same last stable offsets and high watermarks, and the same fencing error.
func TestTransactions(t *testing.T) {
	var outcomes []txnOutcome
	var names []string
	for _, tg := range clusters() {
		t.Run(tg.name, func(t *testing.T) {
			o := txnScenario(t, tg.start(t))
			outcomes = append(outcomes, o)
			names = append(names, tg.name)
		})
	}
	for i := 1; i < len(outcomes); i++ {
		if !reflect.DeepEqual(outcomes[0], outcomes[i]) {
			t.Errorf("%s and %s differ:\n%+v\n%+v", names[0], names[i], outcomes[0], outcomes[i])
		}
	}
}

func txnScenario(t *testing.T, c harness.Cluster) txnOutcome {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adm := kadm.NewClient(newClient(t, c))
	topic := uniqueName("txn")
	createTopic(ctx, t, adm, topic, 2, 1, nil)
	tid := uniqueName("tid")
	opts := []kgo.Opt{kgo.TransactionalID(tid), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner())}
	txn := func(cl *kgo.Client, vals []string, commit bool) {
		t.Helper()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v), Partition: int32(i % 2)}).FirstErr(); err != nil {
				t.Fatalf("produce %s: %v", v, err)
			}
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatalf("end transaction: %v", err)
		}
	}
	first := newClient(t, c, opts...)
	txn(first, []string{"a0", "a1", "a2"}, true)
	txn(first, []string{"b0", "b1", "b2"}, false)
	txn(first, []string{"c0", "c1"}, true)

	// A zombie: the first instance opens a transaction, a second one
	// initializes with the same id (aborting it), the first is fenced.
	if err := first.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := first.ProduceSync(ctx, &kgo.Record{Value: []byte("z0"), Partition: 0}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	second := newClient(t, c, opts...)
	txn(second, []string{"d0", "d1"}, true)
	var out txnOutcome
	err := first.ProduceSync(ctx, &kgo.Record{Value: []byte("z1"), Partition: 1}).FirstErr()
	if err == nil {
		err = first.EndTransaction(ctx, kgo.TryCommit)
	}
	switch {
	case errors.Is(err, kerr.ProducerFenced), errors.Is(err, kerr.InvalidProducerEpoch):
		out.Zombie = "fenced"
	case err == nil:
		out.Zombie = "not fenced"
	default:
		out.Zombie = fmt.Sprintf("other: %v", err)
	}

	// An open transaction holds the last stable offset of partition 0.
	if err := second.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := second.ProduceSync(ctx, &kgo.Record{Value: []byte("open"), Partition: 0}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	lso, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	hw, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	out.Ends = map[int32][2]int64{}
	for p := int32(0); p < 2; p++ {
		l, _ := lso.Lookup(topic, p)
		h, _ := hw.Lookup(topic, p)
		out.Ends[p] = [2]int64{l.Offset, h.Offset}
	}
	recs := consumeN(ctx, t, c, topic, 7, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	for _, r := range recs {
		out.Committed = append(out.Committed, fmt.Sprintf("%d/%d=%s", r.Partition, r.Offset, r.Value))
	}
	slices.Sort(out.Committed)
	if err := second.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	return out
}

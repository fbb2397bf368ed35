package broker

import (
	"cmp"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestTransactGroupSession is consume-transform-produce with
// kgo.GroupTransactSession: input offsets are committed inside the
// transactions that write the output, so the output holds every input
// record exactly once and the group's committed offsets match it.
func TestTransactGroupSession(t *testing.T) {
	t.Parallel()
	for _, tv := range txnVersions {
		t.Run(tv.name, func(t *testing.T) {
			t.Parallel()
			testTransactGroupSession(t, tv.opts)
		})
	}
}

func testTransactGroupSession(t *testing.T, opts []kgo.Opt) {
	b := startTestBroker(t, func(c *Config) { groupTestConfig(c); c.TransactionTopicPartitions = 5 })
	ctx := testCtx(t)
	adm := newAdmin(t, b)
	createTopic(t, adm, "in", 3, nil)
	createTopic(t, adm, "out", 3, nil)
	const n = 300
	produceValues(t, newClient(t, b), "in", 0, n)

	sess, err := kgo.NewGroupTransactSession(append([]kgo.Opt{
		kgo.SeedBrokers(b.Addr()), kgo.TransactionalID("eos"), kgo.ConsumerGroup("eos-g"),
		kgo.ConsumeTopics("in"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DefaultProduceTopic("out"),
		kgo.RequireStableFetchOffsets(),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	done := 0
	for done < n {
		fs := sess.PollRecords(ctx, 50)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d: %v", done, n, ctx.Err())
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		if err := sess.Begin(); err != nil {
			t.Fatal(err)
		}
		var recs []*kgo.Record
		fs.EachRecord(func(r *kgo.Record) {
			recs = append(recs, &kgo.Record{Key: r.Key, Value: []byte("x" + string(r.Value))})
		})
		if len(recs) > 0 {
			if err := sess.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		committed, err := sess.End(ctx, kgo.TryCommit)
		if err != nil {
			t.Fatal(err)
		}
		if committed {
			done += len(recs)
		}
	}
	out := consumeAll(t, b, "out", true)
	seen := map[string]int{}
	for _, r := range out {
		seen[string(r.Value)]++
	}
	for i := 0; i < n; i++ {
		if c := seen["x"+strconv.Itoa(i)]; c != 1 {
			t.Errorf("output holds record %d %d times", i, c)
		}
	}
	offs, err := adm.FetchOffsets(ctx, "eos-g")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	offs.Each(func(o kadm.OffsetResponse) { total += o.At })
	if total != n {
		t.Fatalf("group committed %d offsets in total, want %d", total, n)
	}
}

// TestTransactionsSurviveRestart runs many concurrent transactional
// producers, restarts the broker on the same data directory while they
// work, lets new instances of the same transactional ids re-initialize and
// continue, and checks that every transaction is fully visible or fully
// absent under read_committed, and that every acknowledged commit is there.
// The restart comes at two moments: as soon as one commit is acknowledged
// (most producers are still initializing or in their first transaction,
// the shape of a failure seen once in session 15 and not reproduced since),
// and once every producer has committed and 20 commits are in (all are in
// the middle of their work).
func TestTransactionsSurviveRestart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		minAck  int
		allBusy bool
	}{
		{"first-commit", 1, false},
		{"all-busy", 20, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testTransactionsSurviveRestart(t, tc.minAck, tc.allBusy)
		})
	}
}

// testTransactionsSurviveRestart restarts the broker once minAck commits
// are acknowledged and, with allBusy, every producer has committed one.
func testTransactionsSurviveRestart(t *testing.T, minAck int, allBusy bool) {
	dir := t.TempDir()
	mod := func(c *Config) { c.DataDir = dir; c.Fsync = "always"; c.TransactionTopicPartitions = 5 }
	b := startTestBroker(t, mod)
	createTopic(t, newAdmin(t, b), "rt", 3, nil)
	const producers, perTxn = 6, 6
	var mu sync.Mutex
	acked := map[string]bool{} // "p/txn" whose commit was acknowledged

	run := func(ctx context.Context, b *Broker, round, txns int, stop <-chan struct{}) {
		var wg sync.WaitGroup
		for p := 0; p < producers; p++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.TransactionalID(fmt.Sprintf("rt-%d", p)),
					kgo.DefaultProduceTopic("rt"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.RetryTimeout(5e9))
				if err != nil {
					t.Error(err)
					return
				}
				defer cl.Close()
				for i := 0; i < txns; i++ {
					select {
					case <-stop:
						return
					default:
					}
					id := fmt.Sprintf("%d/%d-%d", p, round, i)
					if err := cl.BeginTransaction(); err != nil {
						return
					}
					var produceErr error
					var errMu sync.Mutex
					for j := 0; j < perTxn; j++ {
						cl.Produce(ctx, &kgo.Record{Value: []byte(id + "/" + strconv.Itoa(j))}, func(_ *kgo.Record, err error) {
							errMu.Lock()
							produceErr = cmp.Or(produceErr, err)
							errMu.Unlock()
						})
					}
					if err := cl.Flush(ctx); err != nil {
						return
					}
					// franz-go ends a transaction none of whose records were written with an abort and
					// reports success: only a commit after every record was acknowledged counts.
					err := cl.EndTransaction(ctx, kgo.TryCommit)
					if produceErr != nil {
						t.Logf("transaction %s: produce: %v (end: %v)", id, produceErr, err)
						return
					}
					if err != nil {
						return
					}
					mu.Lock()
					acked[id] = true
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}

	stop := make(chan struct{})
	finished := make(chan struct{})
	ctx0, cancel0 := context.WithCancel(testCtx(t))
	defer cancel0()
	go func() { run(ctx0, b, 0, 1000, stop); close(finished) }()
	// Restart once some transactions are through, while others are open.
	// Without allBusy the restart usually finds only the fastest producer
	// working: the others are still initializing.
	for {
		mu.Lock()
		n := len(acked)
		busy := true
		for p := 0; p < producers && allBusy; p++ {
			busy = busy && acked[fmt.Sprintf("%d/0-0", p)]
		}
		mu.Unlock()
		if n >= minAck && busy {
			break
		}
		select {
		case <-finished:
			t.Fatal("producers stopped before the restart")
		case <-testCtx(t).Done():
			t.Fatal("producers made no progress")
		default:
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	if err := b.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	cancel0() // the first instances give up at once instead of retrying
	<-finished
	t.Logf("phase: old producers stopped")

	b2 := startTestBroker(t, mod)
	t.Logf("phase: restarted")
	run(testCtx(t), b2, 1, 5, make(chan struct{}))
	t.Logf("phase: second round done")
	for p := 0; p < producers; p++ {
		for i := 0; i < 5; i++ {
			if id := fmt.Sprintf("%d/1-%d", p, i); !acked[id] {
				t.Errorf("transaction %s after the restart was not committed", id)
			}
		}
	}

	got := consumeAll(t, b2, "rt", true)
	per := map[string]map[string]int{}
	for _, r := range got {
		v := string(r.Value)
		k := v[:strings.LastIndexByte(v, '/')]
		if per[k] == nil {
			per[k] = map[string]int{}
		}
		per[k][v]++
	}
	for k, recs := range per {
		if len(recs) != perTxn {
			t.Errorf("transaction %s partly visible: %d of %d records", k, len(recs), perTxn)
		}
		for v, c := range recs {
			if c != 1 {
				t.Errorf("record %s seen %d times", v, c)
			}
		}
	}
	for k := range acked {
		if per[k] == nil {
			t.Errorf("acknowledged transaction %s missing", k)
		}
	}
	if len(acked) < minAck+producers*5 {
		t.Errorf("only %d acknowledged transactions", len(acked))
	}
	if t.Failed() {
		// Say whether the records are in the log, and what hides them.
		for p := 0; p < producers; p++ {
			t.Logf("rt-%d: %s", p, b2.txns.describeTxnForTest(fmt.Sprintf("rt-%d", p)))
		}
		for part := int32(0); part < 3; part++ {
			logTxnPartition(t, b2, "rt", part)
		}
	}
}

package integration

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/integration/harness"
)

// txnLoadRecords is how many records each transaction of a txnLoad writes, spread over the topic's
// partitions by key.
const txnLoadRecords = 12

// txnLoad runs transactions one after another through one transactional id until stopped (at most
// 5,000), each writing txnLoadRecords records "tNNNNN-RR", and remembers how each ended:
//   - committed: EndTransaction(commit) returned nil;
//   - aborted: a produce failed and EndTransaction(abort) returned nil;
//   - unknown: the commit or abort itself failed, so the outcome is the cluster's to tell.
//
// After any failure the client is replaced by a new one with the same transactional id, whose
// InitProducerID fences the old producer and ends its open transaction, as an application would.
type txnLoad struct {
	c       harness.Cluster
	t       testing.TB
	tid     string
	topic   string
	stopped chan struct{}
	wg      sync.WaitGroup // the transaction loop, owned by the txnLoad; finish waits for it

	mu                         sync.Mutex
	committed, aborted, unsure map[int]bool // by transaction number; guarded by mu
	failures                   int          // failed attempts (aborted + unknown); guarded by mu
	lastErr                    error        // guarded by mu
}

func startTxnLoad(ctx context.Context, t testing.TB, c harness.Cluster, topic string) *txnLoad {
	l := &txnLoad{c: c, t: t, tid: uniqueName("partition-txn"), topic: topic, stopped: make(chan struct{}),
		committed: map[int]bool{}, aborted: map[int]bool{}, unsure: map[int]bool{}}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		var cl *kgo.Client
		defer func() {
			if cl != nil {
				cl.Close()
			}
		}()
		for n := 0; n < 5000; n++ {
			select {
			case <-l.stopped:
				return
			case <-ctx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
			if cl == nil {
				var err error
				// Short timeouts so a transaction stuck behind an unreachable leader or
				// coordinator fails and is retried rather than waiting out the whole cut.
				cl, err = kgo.NewClient(kgo.SeedBrokers(strings.Split(c.Bootstrap(), ",")...),
					kgo.TransactionalID(l.tid), kgo.DefaultProduceTopic(topic), kgo.TransactionTimeout(10*time.Second),
					kgo.RecordDeliveryTimeout(15*time.Second), kgo.ProduceRequestTimeout(5*time.Second),
					kgo.RequestTimeoutOverhead(2*time.Second), kgo.RetryTimeout(15*time.Second))
				if err != nil {
					l.note(n, "unknown", err)
					continue
				}
			}
			outcome, err := l.one(ctx, cl, n)
			l.note(n, outcome, err)
			if err != nil {
				cl.Close()
				cl = nil
			}
		}
	}()
	return l
}

// one runs transaction n and says how it ended.
func (l *txnLoad) one(ctx context.Context, cl *kgo.Client, n int) (string, error) {
	if err := cl.BeginTransaction(); err != nil {
		return "aborted", fmt.Errorf("begin: %w", err) // nothing was written
	}
	recs := make([]*kgo.Record, txnLoadRecords)
	for i := range recs {
		v := fmt.Sprintf("t%05d-%02d", n, i)
		recs[i] = &kgo.Record{Key: []byte(v), Value: []byte(v)}
	}
	if perr := cl.ProduceSync(ctx, recs...).FirstErr(); perr != nil {
		if err := cl.EndTransaction(ctx, kgo.TryAbort); err != nil {
			return "unknown", fmt.Errorf("produce: %v; abort: %w", perr, err)
		}
		return "aborted", fmt.Errorf("produce: %w", perr)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return "unknown", fmt.Errorf("commit: %w", err)
	}
	return "committed", nil
}

func (l *txnLoad) note(n int, outcome string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch outcome {
	case "committed":
		l.committed[n] = true
	case "aborted":
		l.aborted[n] = true
	default:
		l.unsure[n] = true
	}
	if err != nil {
		l.failures++
		l.lastErr = err
	}
}

// counts implements partitionLoad: committed transactions, and failed attempts.
func (l *txnLoad) counts() (done, failed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.committed), l.failures
}

// finish implements partitionLoad.
func (l *txnLoad) finish(ctx context.Context, t testing.TB) {
	close(l.stopped)
	l.wg.Wait()
}

// verify implements partitionLoad: reads the topic read_committed to its end and checks every
// transaction is all-or-nothing and seen at most once, every committed one seen, no aborted one.
func (l *txnLoad) verify(ctx context.Context, t testing.TB, c harness.Cluster, adm *kadm.Client, topic string) (total, stored int) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.committed) == 0 {
		t.Fatalf("no transaction committed (last error %v)", l.lastErr)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	ends.Each(func(o kadm.ListedOffset) { stored += int(o.Offset) })
	// Everything committed plus whatever unknown transactions made it: read until caught up with
	// the committed count, then until the topic has been quiet for a while.
	cl := newClient(t, c, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	defer cl.Close()
	seen := map[string]int{}
	perTxn := map[int]int{}
	want := len(l.committed) * txnLoadRecords
	got := 0
	for {
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			t.Fatalf("read_committed: %d records, want at least %d: %v", got, want, ctx.Err())
		}
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			n++
			seen[string(r.Value)]++
			var txn, i int
			if _, err := fmt.Sscanf(string(r.Value), "t%05d-%02d", &txn, &i); err != nil {
				t.Errorf("record %q is not a transaction's", r.Value)
				return
			}
			perTxn[txn]++
		})
		got += n
		if n == 0 && got >= want {
			break
		}
	}
	for v, k := range seen {
		if k > 1 {
			t.Errorf("record %s read %d times", v, k)
		}
	}
	for txn, k := range perTxn {
		switch {
		case l.aborted[txn]:
			t.Errorf("aborted transaction %d visible (%d records)", txn, k)
		case k != txnLoadRecords:
			t.Errorf("transaction %d partly visible: %d of %d records", txn, k, txnLoadRecords)
		}
	}
	unsureSeen := 0
	for txn := range l.committed {
		if perTxn[txn] == 0 {
			t.Errorf("committed transaction %d not visible", txn)
		}
	}
	for txn := range l.unsure {
		if perTxn[txn] > 0 {
			unsureSeen++
		}
	}
	t.Logf("transactions: %d committed, %d aborted, %d with an unknown outcome (%d of them visible); %d records read_committed (last error: %v)",
		len(l.committed), len(l.aborted), len(l.unsure), unsureSeen, got, l.lastErr)
	return len(l.committed), stored
}

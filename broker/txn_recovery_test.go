package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestTxnRecoveryOfPrepared simulates a crash between the durable Prepare
// record and the markers: the reopened coordinator finishes the markers
// exactly as Kafka's does on load (PrepareCommit -> commit, PrepareAbort ->
// abort), and an Ongoing transaction is left to time out and is aborted.
func TestTxnRecoveryOfPrepared(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		end       int // 1 commit, 0 abort, -1 leave ongoing
		wantState string
		visible   bool
	}{
		{"prepare commit", 1, "CompleteCommit", true},
		{"prepare abort", 0, "CompleteAbort", false},
		{"ongoing times out", -1, "CompleteAbort", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			mod := func(c *Config) {
				c.DataDir, c.Fsync, c.TransactionTopicPartitions = dir, "always", 3
				c.TransactionAbortCheckInterval = 50 * time.Millisecond
			}
			b := startTestBroker(t, mod)
			ctx := testCtx(t)
			createTopic(t, newAdmin(t, b), "rec", 2, nil)
			cl := newClient(t, b, kgo.TransactionalID("rec-id"), kgo.DefaultProduceTopic("rec"),
				kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.TransactionTimeout(500*time.Millisecond))
			if err := cl.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 4; i++ {
				if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			cl.Close()
			if tc.end >= 0 {
				// EndTxn's first half only: the Prepare record is durable,
				// no marker is written.
				c := b.txns
				c.mu.Lock()
				m := c.txns["rec-id"]
				if r := m.EndTxn(m.ProducerID, m.Epoch, tc.end == 1, time.Now().UnixMilli()); !r.Prepared {
					c.mu.Unlock()
					t.Fatalf("end: %+v", r)
				}
				c.inflight["rec-id"] = true // keep the tick away: we "crash" now
				w, err := c.persist(m, time.Now())
				c.mu.Unlock()
				if err == nil {
					err = w.durable(context.Background())
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}

			b2 := startTestBroker(t, mod)
			adm := newAdmin(t, b2)
			for {
				ds, err := adm.DescribeTransactions(ctx, "rec-id")
				if err == nil {
					if d, ok := ds["rec-id"]; ok && d.State == tc.wantState {
						break
					}
				}
				if ctx.Err() != nil {
					t.Fatalf("state never reached %s: %s", tc.wantState, b2.txns.describeTxnForTest("rec-id"))
				}
				time.Sleep(20 * time.Millisecond)
			}
			// Both partitions are stable again (LSO = HW = records + marker).
			lso, err := adm.ListCommittedOffsets(ctx, "rec")
			if err != nil {
				t.Fatal(err)
			}
			lso.Each(func(o kadm.ListedOffset) {
				if o.Offset != 3 {
					t.Errorf("partition %d: last stable offset %d, want 3", o.Partition, o.Offset)
				}
			})
			if tc.visible {
				if got := consumeAll(t, b2, "rec", true); len(got) != 4 {
					t.Fatalf("read_committed saw %d records, want 4", len(got))
				}
			}
		})
	}
}

// TestTransactionalIDExpiration: an idle id is forgotten after
// transactional.id.expiration.ms, also across a restart (its tombstone is
// in __transaction_state).
func TestTransactionalIDExpiration(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mod := func(c *Config) {
		c.DataDir, c.TransactionTopicPartitions = dir, 3
		c.TransactionAbortCheckInterval = 50 * time.Millisecond
		c.TransactionalIDExpiration = 300 * time.Millisecond
	}
	b := startTestBroker(t, mod)
	ctx := testCtx(t)
	createTopic(t, newAdmin(t, b), "exp", 1, nil)
	cl := newClient(t, b, kgo.TransactionalID("old-id"), kgo.DefaultProduceTopic("exp"))
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	gone := func(b *Broker) bool {
		ds, err := newAdmin(t, b).DescribeTransactions(ctx, "old-id")
		return err == nil && ds["old-id"].Err != nil
	}
	for !gone(b) {
		if ctx.Err() != nil {
			t.Fatalf("id never expired: %s", b.txns.describeTxnForTest("old-id"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2 := startTestBroker(t, func(c *Config) { mod(c); c.TransactionalIDExpiration = time.Hour })
	// Load the coordinator's partitions, then look.
	if _, err := newAdmin(t, b2).DescribeTransactions(ctx, "old-id"); err != nil {
		t.Fatal(err)
	}
	if s := b2.txns.describeTxnForTest("old-id"); s != "<none>" {
		t.Fatalf("expired id back after restart: %s", s)
	}
}

// preparedInMemory produces four records in a transaction of id to the two
// partitions of topic on b and then takes EndTxn's first half in memory
// only: the state is PrepareCommit, nothing is persisted and no marker is
// written. The id is left inflight, so the tick stays away until a
// completion the test runs ends.
func preparedInMemory(t *testing.T, b *Broker, id, topic string) {
	t.Helper()
	createTopic(t, newAdmin(t, b), topic, 2, nil)
	openTxn(t, b, id, topic, 4, kgo.RecordPartitioner(kgo.RoundRobinPartitioner())).Close()
	c := b.txns
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.txns[id]
	if r := m.EndTxn(m.ProducerID, m.Epoch, true, time.Now().UnixMilli()); !r.Prepared {
		t.Fatalf("end: %+v", r)
	}
	c.inflight[id] = true
}

// openTxn begins a transaction of id on b and produces n records to topic
// in it; the transaction stays open.
func openTxn(t *testing.T, b *Broker, id, topic string, n int, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl := newClient(t, b, append([]kgo.Opt{kgo.TransactionalID(id), kgo.DefaultProduceTopic(topic)}, opts...)...)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := cl.ProduceSync(testCtx(t), &kgo.Record{Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	return cl
}

// endOffsets returns the log end offset of each partition of topic.
func endOffsets(t *testing.T, b *Broker, topic string) map[int32]int64 {
	t.Helper()
	ends, err := newAdmin(t, b).ListEndOffsets(testCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

// TestTxnMarkersWaitForCommittedPrepare: no marker leaves the coordinator
// before its prepared state is committed in __transaction_state. A prepare
// past the high watermark may be truncated by the partition's next leader,
// which then aborts the transaction; a commit marker written meanwhile would
// have made it partly visible. The prepare here sits on a leader whose
// follower never fetches, until the high watermark is moved by hand.
func TestTxnMarkersWaitForCommittedPrepare(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, func(c *Config) { c.TransactionTopicPartitions = 1 })
	preparedInMemory(t, b, "gate-id", "gate")
	stalled := stalledLeader(t)
	w, err := appendInternal(stalled, mkBatch(1, time.Now().UnixMilli(), nil))
	if err != nil {
		t.Fatal(err)
	}
	c := b.txns
	prepare := func() completion {
		c.mu.Lock()
		defer c.mu.Unlock()
		m := c.txns["gate-id"]
		c.written["gate-id"] = stateWrite{w: w, value: m.Value()}
		return c.prepared(m) // inflight: the tick stays away
	}
	ctx, cancel := context.WithTimeout(testCtx(t), 300*time.Millisecond)
	defer cancel()
	if e := c.complete(ctx, prepare()); e == nil {
		t.Fatal("completed a transaction whose prepare is not committed")
	}
	for part, end := range endOffsets(t, b, "gate") {
		if end != 2 {
			t.Fatalf("partition %d ends at %d with the prepare uncommitted, want 2 (no marker)", part, end)
		}
	}

	stalled.advanceHW(1)
	if e := c.complete(testCtx(t), prepare()); e != nil {
		t.Fatalf("complete after the prepare committed: %v", e)
	}
	for part, end := range endOffsets(t, b, "gate") {
		if end != 3 {
			t.Fatalf("partition %d ends at %d, want 3 (records and marker)", part, end)
		}
	}
	if got := consumeAll(t, b, "gate", true); len(got) != 4 {
		t.Fatalf("read_committed saw %d records, want 4", len(got))
	}
}

// TestTxnPreparedWithoutWriteIsPersisted: a prepared state whose append
// failed lives in memory only; the tick writes it again and completes it
// once it is committed, rather than sending markers for a state no replica
// holds.
func TestTxnPreparedWithoutWriteIsPersisted(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, func(c *Config) { c.TransactionTopicPartitions = 1 })
	preparedInMemory(t, b, "again-id", "again")
	c := b.txns
	c.mu.Lock()
	cp := c.prepared(c.txns["again-id"])
	c.mu.Unlock()
	// The completion ends the id's inflight mark, and the tick takes over.
	if e := c.complete(testCtx(t), cp); e == nil {
		t.Fatal("completed a prepared state that was never written")
	}
	ctx := testCtx(t)
	adm := newAdmin(t, b)
	for {
		ds, err := adm.DescribeTransactions(ctx, "again-id")
		if err == nil && ds["again-id"].State == "CompleteCommit" {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("never completed: %s", c.describeTxnForTest("again-id"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := consumeAll(t, b, "again", true); len(got) != 4 {
		t.Fatalf("read_committed saw %d records, want 4", len(got))
	}
	// The state the tick wrote is in the log: a replay finds it complete.
	p := b.parts.get(txnTopic, 0)
	c.mu.Lock()
	ms, err := replayTxnPartition(p)
	c.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if m := ms["again-id"]; m == nil || m.State.String() != "CompleteCommit" {
		t.Fatalf("replayed state %+v, want CompleteCommit", m)
	}
}

// TestImplicitAddWaitsForCommittedAdd: a transaction version 2 produce to a
// partition already in the transaction goes in only once a committed record
// of the transaction names the partition. The earlier produce that added it
// may have been refused because its append did not commit; a batch let in
// meanwhile would be left without a marker by the next coordinator.
func TestImplicitAddWaitsForCommittedAdd(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t, func(c *Config) { c.TransactionTopicPartitions = 1 })
	ctx := testCtx(t)
	createTopic(t, newAdmin(t, b), "ia", 1, nil)
	openTxn(t, b, "ia-id", "ia", 1)
	c := b.txns
	c.mu.Lock()
	m := c.txns["ia-id"]
	pid, epoch := m.ProducerID, m.Epoch
	// The write holding the state sits on a leader whose follower never
	// fetches.
	stalled := stalledLeader(t)
	w, err := appendInternal(stalled, mkBatch(1, time.Now().UnixMilli(), nil))
	if err != nil {
		c.mu.Unlock()
		t.Fatal(err)
	}
	c.written["ia-id"] = stateWrite{w: w, value: m.Value()}
	c.mu.Unlock()

	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if e := c.implicitAdd(short, pid, epoch, "ia", 0); e == nil {
		t.Fatal("produce let in while the record adding its partition is not committed")
	}
	stalled.advanceHW(1)
	if e := c.implicitAdd(ctx, pid, epoch, "ia", 0); e != nil {
		t.Fatalf("after the add committed: %v", e)
	}

	// A state changed in memory and never written is written first.
	c.mu.Lock()
	delete(c.written, "ia-id")
	c.mu.Unlock()
	if e := c.implicitAdd(ctx, pid, epoch, "ia", 0); e != nil {
		t.Fatalf("with the add never written: %v", e)
	}
	c.mu.Lock()
	w2, ok := c.writeOf(c.txns["ia-id"])
	c.mu.Unlock()
	if !ok || w2.p == stalled || !w2.committedNow() {
		t.Fatalf("state not written again: ok=%v write %+v", ok, w2)
	}
}

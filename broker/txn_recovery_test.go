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

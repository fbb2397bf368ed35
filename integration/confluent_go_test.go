//go:build cgo

package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/stromhq/strom/integration/gaps"
)

// This file holds the confluent-kafka-go (v2.15.1, bundled librdkafka 2.15.1) proofs; the client needs cgo.

func init() {
	helperMains["ckg-group-member"] = ckgGroupMember
}

// ckgGroupMember is one confluent-kafka-go group member process for the membership proof (see
// memberCommand): args are bootstrap, topic, group and optionally the group.protocol ("classic" when
// absent; "consumer" is KIP-848, where the session timeout is the broker's). Each record's offset is committed synchronously
// (CommitMessage) before its REC line; SIGTERM closes the consumer, leaving the group.
func ckgGroupMember(args []string) int {
	if len(args) != 3 && len(args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: ckg-group-member BOOTSTRAP TOPIC GROUP [PROTOCOL]")
		return 2
	}
	bootstrap, topic, group := args[0], args[1], args[2]
	cfg := kafka.ConfigMap{
		"bootstrap.servers":  bootstrap,
		"group.id":           group,
		"enable.auto.commit": false,
		"auto.offset.reset":  "earliest",
	}
	if len(args) == 4 && args[3] != "classic" {
		cfg["group.protocol"] = args[3]
	} else {
		cfg["session.timeout.ms"] = 6000
		cfg["heartbeat.interval.ms"] = 500
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM)
	c, err := kafka.NewConsumer(&cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "new consumer:", err)
		return 1
	}
	// owned tracks the assignment: eager rebalances revoke everything and then assign the full set;
	// KIP-848 (incremental) ones add and remove partitions.
	owned := map[int32]bool{}
	show := func() {
		var ps []int
		for p := range owned {
			ps = append(ps, int(p))
		}
		slices.Sort(ps)
		var strs []string
		for _, p := range ps {
			strs = append(strs, fmt.Sprint(p))
		}
		if len(strs) == 0 {
			strs = []string{"-"}
		}
		fmt.Printf("ASSIGN %s\n", strings.Join(strs, ","))
	}
	err = c.SubscribeTopics([]string{topic}, func(_ *kafka.Consumer, ev kafka.Event) error {
		switch e := ev.(type) {
		case kafka.AssignedPartitions:
			for _, tp := range e.Partitions {
				owned[tp.Partition] = true
			}
			show()
		case kafka.RevokedPartitions:
			for _, tp := range e.Partitions {
				delete(owned, tp.Partition)
			}
			show()
		}
		return nil // the client applies the (eager) assignment itself
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "subscribe:", err)
		return 1
	}
	for {
		select {
		case <-stop:
			if err := c.Close(); err != nil {
				fmt.Fprintln(os.Stderr, "close:", err)
				return 1
			}
			return 0
		default:
		}
		switch e := c.Poll(200).(type) {
		case *kafka.Message:
			if e.TopicPartition.Error != nil {
				fmt.Fprintln(os.Stderr, "message error:", e.TopicPartition.Error)
				continue
			}
			if _, err := c.CommitMessage(e); err != nil {
				fmt.Fprintln(os.Stderr, "commit:", err)
				continue
			}
			fmt.Printf("REC %d %d\n", e.TopicPartition.Partition, e.TopicPartition.Offset)
		case kafka.Error:
			fmt.Fprintln(os.Stderr, "client error:", e)
		}
	}
}

// TestGroupMembersConfluentGo runs the membership proof with three confluent-kafka-go consumers, each in
// its own process (this test binary as a helper) so one can be SIGKILLed; offsets are committed
// synchronously per record: exactly once.
func TestGroupMembersConfluentGo(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	runGroupMembershipTargets(t, func(ctx context.Context, bs, topic, group string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, self, bs, topic, group)
		cmd.Env = append(os.Environ(), "STROM_TEST_HELPER=ckg-group-member")
		return cmd
	}, true, true)
}

// TestGroupMembersConfluentGoKIP848 runs the membership proof with three confluent-kafka-go consumers on
// the KIP-848 consumer group protocol (group.protocol=consumer, server-side assignment). B leaves with
// SIGTERM instead of being killed: the KIP-848 session timeout is the broker's
// group.consumer.session.timeout.ms (45 s by default, and its minimum), too long for this test.
func TestGroupMembersConfluentGoKIP848(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	runGroupMembershipTargets(t, func(ctx context.Context, bs, topic, group string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, self, bs, topic, group, "consumer")
		cmd.Env = append(os.Environ(), "STROM_TEST_HELPER=ckg-group-member")
		return cmd
	}, true, false)
}

// TestTransactionsConfluentGo runs the transaction proof (see txnClientCase.check) with confluent-kafka-go:
// commit a-*, abort x-*, commit b-*; a consume-transform-produce loop with SendOffsetsToTransaction whose
// first transaction is aborted and redone; then its own read_committed consumer reads the output.
func TestTransactionsConfluentGo(t *testing.T) {
	for _, tg := range groupTargets() {
		t.Run(tg.name, func(t *testing.T) {
			c := tg.start(t)
			gaps.Run(t, func(t testing.TB) {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				start := time.Now()
				tc := newTxnClientCase(ctx, t, c)
				read, err := ckgTransactions(ctx, c.Bootstrap(), tc)
				if err != nil {
					t.Fatalf("confluent-kafka-go transactions: %v", err)
				}
				tc.check(ctx, t, c, read)
				t.Logf("confluent-kafka-go transactions: %v", time.Since(start).Round(time.Millisecond))
			})
		})
	}
}

// ckgTransactions is the client side of TestTransactionsConfluentGo; it returns what its read_committed
// consumer read from the output topic, in order.
func ckgTransactions(ctx context.Context, bootstrap string, tc txnClientCase) ([]string, error) {
	newProducer := func(tid string) (*kafka.Producer, error) {
		p, err := kafka.NewProducer(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "transactional.id": tid,
			"linger.ms": 5})
		if err != nil {
			return nil, fmt.Errorf("new producer %s: %w", tid, err)
		}
		go func() { // delivery reports; the channel closes with the producer
			for range p.Events() {
			}
		}()
		if err := p.InitTransactions(ctx); err != nil {
			p.Close()
			return nil, fmt.Errorf("init transactions %s: %w", tid, err)
		}
		return p, nil
	}
	out := tc.out
	tp0 := kafka.TopicPartition{Topic: &out, Partition: 0}

	p, err := newProducer(tc.tid + "-plain")
	if err != nil {
		return nil, err
	}
	defer p.Close()
	for _, step := range []struct {
		prefix string
		commit bool
	}{{"a", true}, {"x", false}, {"b", true}} {
		if err := p.BeginTransaction(); err != nil {
			return nil, fmt.Errorf("begin %s: %w", step.prefix, err)
		}
		for i := range 10 {
			if err := p.Produce(&kafka.Message{TopicPartition: tp0, Value: fmt.Appendf(nil, "%s-%d", step.prefix, i)}, nil); err != nil {
				return nil, fmt.Errorf("produce %s-%d: %w", step.prefix, i, err)
			}
		}
		if step.commit {
			err = p.CommitTransaction(ctx)
		} else {
			p.Flush(20_000)
			err = p.AbortTransaction(ctx)
		}
		if err != nil {
			return nil, fmt.Errorf("end transaction %s (commit %v): %w", step.prefix, step.commit, err)
		}
	}

	ctp, err := newProducer(tc.tid + "-ctp")
	if err != nil {
		return nil, err
	}
	defer ctp.Close()
	cons, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "group.id": tc.group,
		"enable.auto.commit": false, "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
	if err != nil {
		return nil, fmt.Errorf("new consumer: %w", err)
	}
	defer cons.Close()
	if err := cons.Subscribe(tc.in, nil); err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", tc.in, err)
	}
	aborted := false
	for done := 0; done < tc.inCount; {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("consume-transform-produce: %d of %d records: %w", done, tc.inCount, ctx.Err())
		}
		var batch []*kafka.Message
		for len(batch) < 5 {
			m, err := cons.ReadMessage(500 * time.Millisecond)
			if err != nil {
				var kerr kafka.Error
				if errors.As(err, &kerr) && kerr.IsTimeout() {
					break
				}
				return nil, fmt.Errorf("read %s: %w", tc.in, err)
			}
			batch = append(batch, m)
		}
		if len(batch) == 0 {
			continue
		}
		if err := ctp.BeginTransaction(); err != nil {
			return nil, fmt.Errorf("begin consume-transform-produce: %w", err)
		}
		for _, m := range batch {
			if err := ctp.Produce(&kafka.Message{TopicPartition: tp0, Value: append([]byte("t-"), m.Value...)}, nil); err != nil {
				return nil, fmt.Errorf("produce transformed: %w", err)
			}
		}
		assigned, err := cons.Assignment()
		if err != nil {
			return nil, fmt.Errorf("assignment: %w", err)
		}
		positions, err := cons.Position(assigned)
		if err != nil {
			return nil, fmt.Errorf("positions: %w", err)
		}
		meta, err := cons.GetConsumerGroupMetadata()
		if err != nil {
			return nil, fmt.Errorf("group metadata: %w", err)
		}
		if err := ctp.SendOffsetsToTransaction(ctx, positions, meta); err != nil {
			return nil, fmt.Errorf("send offsets to transaction: %w", err)
		}
		if !aborted {
			aborted = true
			if err := ctp.AbortTransaction(ctx); err != nil {
				return nil, fmt.Errorf("abort consume-transform-produce: %w", err)
			}
			firsts := map[int32]kafka.TopicPartition{}
			for _, m := range batch {
				if _, ok := firsts[m.TopicPartition.Partition]; !ok {
					firsts[m.TopicPartition.Partition] = m.TopicPartition
				}
			}
			for _, tp := range firsts {
				if err := cons.Seek(tp, 5000); err != nil {
					return nil, fmt.Errorf("seek back to %v: %w", tp, err)
				}
			}
			continue
		}
		if err := ctp.CommitTransaction(ctx); err != nil {
			return nil, fmt.Errorf("commit consume-transform-produce: %w", err)
		}
		done += len(batch)
	}
	if !aborted {
		return nil, errors.New("consume-transform-produce never aborted its first transaction")
	}

	r, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "group.id": tc.group + "-reader",
		"enable.auto.commit": false, "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
	if err != nil {
		return nil, fmt.Errorf("new reader: %w", err)
	}
	defer r.Close()
	if err := r.Assign([]kafka.TopicPartition{{Topic: &out, Partition: 0, Offset: 0}}); err != nil {
		return nil, fmt.Errorf("assign %s: %w", out, err)
	}
	var read []string
	for len(read) < 20+tc.inCount {
		if ctx.Err() != nil {
			return read, fmt.Errorf("read_committed: %d of %d records: %w", len(read), 20+tc.inCount, ctx.Err())
		}
		m, err := r.ReadMessage(500 * time.Millisecond)
		if err != nil {
			var kerr kafka.Error
			if errors.As(err, &kerr) && kerr.IsTimeout() {
				continue
			}
			return read, fmt.Errorf("read %s: %w", out, err)
		}
		read = append(read, string(m.Value))
	}
	return read, nil
}

package integration

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/integration/harness"
)

// groupCounts records, per member, the record values it consumed.
type groupCounts struct {
	mu       sync.Mutex
	byMember map[int]map[string]bool
	all      map[string]bool
	change   chan struct{}
}

func newGroupCounts() *groupCounts {
	return &groupCounts{byMember: map[int]map[string]bool{}, all: map[string]bool{}, change: make(chan struct{}, 1)}
}

func (g *groupCounts) add(member int, value string) {
	g.mu.Lock()
	if g.byMember[member] == nil {
		g.byMember[member] = map[string]bool{}
	}
	g.byMember[member][value] = true
	g.all[value] = true
	g.mu.Unlock()
	select {
	case g.change <- struct{}{}:
	default:
	}
}

// wait blocks until n distinct values were consumed or ctx ends.
func (g *groupCounts) wait(ctx context.Context, n int) error {
	for {
		g.mu.Lock()
		got := len(g.all)
		g.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-g.change:
		case <-ctx.Done():
			return fmt.Errorf("consumed %d of %d distinct records: %w", got, n, ctx.Err())
		}
	}
}

// TestClientConsumerGroups runs consumer groups of two members with sarama
// (JoinGroup/SyncGroup at its protocol version 2.8 defaults) and
// segmentio/kafka-go (old group API versions) against every target: both
// members must take part, together they read every record, and the group's
// committed offsets end at the end of every partition.
func TestClientConsumerGroups(t *testing.T) {
	for _, tg := range clusters() {
		t.Run(tg.name, func(t *testing.T) {
			c := tg.start(t)
			for _, client := range []struct {
				name string
				run  func(ctx context.Context, t *testing.T, c harness.Cluster, topic, group string, counts *groupCounts) error
			}{
				{"sarama", runSaramaGroup},
				{"kafka-go", runKafkaGoGroup},
			} {
				t.Run(client.name, func(t *testing.T) {
					clientGroupScenario(t, c, client.run)
				})
			}
		})
	}
}

func clientGroupScenario(t *testing.T, c harness.Cluster, run func(context.Context, *testing.T, harness.Cluster, string, string, *groupCounts) error) {
	const n = 400
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl := newClient(t, c)
	adm := kadm.NewClient(cl)
	topic, group := uniqueName("groups"), uniqueName("cg")
	createTopic(ctx, t, adm, topic, 4, int16(min(3, c.Nodes())), nil)

	// The records are written only once both members are in the group: written first, a fast
	// broker lets the first member to join read them all before the second one arrives.
	counts := newGroupCounts()
	done := make(chan error, 1)
	go func() { done <- run(ctx, t, c, topic, group, counts) }()
	for {
		gs, err := adm.DescribeGroups(ctx, group)
		if err == nil {
			if g, ok := gs[group]; ok && g.State == "Stable" && len(g.Members) == 2 {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("the group ended before both members joined: %v", err)
		case <-ctx.Done():
			t.Fatalf("the group never had both members: %v", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	produce(ctx, t, cl, makeRecords(topic, 0, n, time.Now().Add(-time.Minute)))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	counts.mu.Lock()
	defer counts.mu.Unlock()
	if len(counts.all) != n {
		t.Errorf("group consumed %d distinct records, want %d", len(counts.all), n)
	}
	for m := range 2 {
		if len(counts.byMember[m]) == 0 {
			t.Errorf("member %d consumed nothing: the group did not share the partitions", m)
		}
	}
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("fetch committed offsets: %v", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	ends.Each(func(e kadm.ListedOffset) {
		if o, ok := offs.Lookup(topic, e.Partition); !ok || o.At != e.Offset {
			t.Errorf("partition %d: committed %d (found %v), end %d", e.Partition, o.At, ok, e.Offset)
		}
	})
}

// saramaHandler consumes claims and marks every message.
type saramaHandler struct {
	member int
	counts *groupCounts
}

func (saramaHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h saramaHandler) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for msg := range claim.Messages() {
		h.counts.add(h.member, string(msg.Value))
		s.MarkMessage(msg, "")
	}
	return nil
}

func runSaramaGroup(ctx context.Context, t *testing.T, c harness.Cluster, topic, group string, counts *groupCounts) error {
	cfg := sarama.NewConfig()
	cfg.ClientID = "strom-groups-sarama"
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Interval = 200 * time.Millisecond
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
	var cgs []sarama.ConsumerGroup
	for range 2 {
		cg, err := sarama.NewConsumerGroup(strings.Split(c.Bootstrap(), ","), group, cfg)
		if err != nil {
			return fmt.Errorf("sarama consumer group: %w", err)
		}
		cgs = append(cgs, cg)
	}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for i, cg := range cgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for runCtx.Err() == nil {
				err := cg.Consume(runCtx, []string{topic}, saramaHandler{member: i, counts: counts})
				if err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) && runCtx.Err() == nil {
					errs <- fmt.Errorf("sarama member %d: %w", i, err)
					return
				}
			}
		}()
	}
	err := counts.wait(ctx, 400)
	stop()
	wg.Wait()
	for _, cg := range cgs {
		if cerr := cg.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close sarama group: %w", cerr)
		}
	}
	select {
	case e := <-errs:
		return e
	default:
	}
	return err
}

func runKafkaGoGroup(ctx context.Context, t *testing.T, c harness.Cluster, topic, group string, counts *groupCounts) error {
	var readers []*kafka.Reader
	for range 2 {
		readers = append(readers, kafka.NewReader(kafka.ReaderConfig{
			Brokers: strings.Split(c.Bootstrap(), ","), GroupID: group, Topic: topic,
			StartOffset: kafka.FirstOffset, MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 200 * time.Millisecond,
			HeartbeatInterval: 500 * time.Millisecond, SessionTimeout: 10 * time.Second,
			GroupBalancers: []kafka.GroupBalancer{kafka.RangeGroupBalancer{}},
		}))
	}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for i, r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				m, err := r.FetchMessage(runCtx)
				if err != nil {
					if runCtx.Err() == nil {
						errs <- fmt.Errorf("kafka-go member %d fetch: %w", i, err)
					}
					return
				}
				// Commit synchronously before counting, so the committed
				// offsets cover everything counted.
				if err := r.CommitMessages(runCtx, m); err != nil {
					if runCtx.Err() == nil {
						errs <- fmt.Errorf("kafka-go member %d commit at %s/%d@%d: %w", i, m.Topic, m.Partition, m.Offset, err)
					}
					return
				}
				counts.add(i, string(m.Value))
			}
		}()
	}
	err := counts.wait(ctx, 400)
	if err == nil {
		// The last commits may still be in flight on the other member.
		err = waitCommitted(ctx, c, topic, group)
	}
	stop()
	wg.Wait()
	for _, r := range readers {
		_ = r.Close()
	}
	select {
	case e := <-errs:
		return e
	default:
	}
	return err
}

// waitCommitted waits until the group's committed offsets reach the end of
// every partition of topic.
func waitCommitted(ctx context.Context, c harness.Cluster, topic, group string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(c.Bootstrap(), ",")...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for {
		offs, err1 := adm.FetchOffsets(ctx, group)
		ends, err2 := adm.ListEndOffsets(ctx, topic)
		if err1 == nil && err2 == nil {
			done := true
			ends.Each(func(e kadm.ListedOffset) {
				if o, ok := offs.Lookup(topic, e.Partition); !ok || o.At != e.Offset {
					done = false
				}
			})
			if done {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("committed offsets of %s never reached the end of %s: %w", group, topic, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

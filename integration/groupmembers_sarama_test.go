package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

func init() {
	helperMains["sarama-group-member"] = saramaGroupMember
}

// saramaMemberHandler prints each session's claims and commits the records it holds synchronously before
// their REC lines (auto-commit is off, so session.Commit flushes the marked offset and waits for the
// response; a refused commit goes to the group's Errors channel, and its records would be read again).
type saramaMemberHandler struct {
	mu sync.Mutex // serializes Commit and the REC line across the per-partition ConsumeClaim goroutines
}

func (*saramaMemberHandler) Setup(s sarama.ConsumerGroupSession) error {
	var ps []int
	for _, parts := range s.Claims() {
		for _, p := range parts {
			ps = append(ps, int(p))
		}
	}
	printAssign(ps)
	return nil
}

func (*saramaMemberHandler) Cleanup(sarama.ConsumerGroupSession) error {
	printAssign(nil)
	return nil
}

func (h *saramaMemberHandler) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for msg := range claim.Messages() {
		// Commit what is already buffered in one request: a commit shares the coordinator's connection
		// with the fetch long poll and waits behind it, so one commit per record is slow.
		batch := []*sarama.ConsumerMessage{msg}
	drain:
		for len(batch) < 100 {
			select {
			case m, ok := <-claim.Messages():
				if !ok {
					break drain
				}
				batch = append(batch, m)
			default:
				break drain
			}
		}
		h.mu.Lock()
		s.MarkMessage(batch[len(batch)-1], "")
		s.Commit()
		for _, m := range batch {
			fmt.Printf("REC %d %d\n", m.Partition, m.Offset)
		}
		h.mu.Unlock()
	}
	return nil
}

// saramaGroupMember is one sarama (v1.61.1) group member process for the membership proof (see
// memberCommand): args are bootstrap, topic and group. SIGTERM closes the consumer group, leaving it.
func saramaGroupMember(args []string) int {
	if len(args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: sarama-group-member BOOTSTRAP TOPIC GROUP")
		return 2
	}
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_1_0_0
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.MaxWaitTime = 100 * time.Millisecond
	cfg.Consumer.Group.Session.Timeout = 6 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = 500 * time.Millisecond
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
	cg, err := sarama.NewConsumerGroup(strings.Split(args[0], ","), args[2], cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "new consumer group:", err)
		return 1
	}
	go func() { // closes when cg is closed
		for err := range cg.Errors() {
			fmt.Fprintln(os.Stderr, "group error:", err)
		}
	}()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	h := &saramaMemberHandler{}
	for ctx.Err() == nil {
		if err := cg.Consume(ctx, []string{args[1]}, h); err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) {
			fmt.Fprintln(os.Stderr, "consume:", err)
			time.Sleep(200 * time.Millisecond)
		}
	}
	if err := cg.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "close:", err)
		return 1
	}
	return 0
}

// TestGroupMembersSarama runs the membership proof with three sarama consumer groups, each in its own
// process (this test binary as a helper), committing synchronously before printing: exactly once.
func TestGroupMembersSarama(t *testing.T) {
	runGroupMembershipTargets(t, helperMember(t, "sarama-group-member"), true, true)
}

package integration

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/integration/harness"
)

// TestStromNetworkPartition runs a three-node Strom cluster with every node in a network namespace of
// its own and partitions the network under an idempotent acks=all producer (min.insync.replicas=2),
// the way Jepsen does, while every process keeps running:
//   - a partition leader is cut off from both followers while clients still reach it, so it takes
//     writes it cannot replicate;
//   - the raft leader (controller) is cut off from every node and from the clients;
//   - a leader loses the link to one follower only, a partial partition where the other two nodes
//     still see everybody.
//
// Each cut lasts longer than the broker session timeout, so the cluster fences and re-elects, and then
// heals. After each heal the cluster must return to full ISRs and take writes again; at the end every
// acknowledged record must be readable exactly once, in its partition, in acknowledgement order.
func TestStromNetworkPartition(t *testing.T) {
	t.Parallel() // its own cluster and network; most of the time is spent waiting for fencing and elections
	const hold = 2 * harness.StromSessionTimeout
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := harness.StartStrom(t, harness.Nodes(3), harness.NetNamespaces())
	adm := kadm.NewClient(newClient(t, c))
	topic := uniqueName("partition")
	minISR := "2"
	createTopic(ctx, t, adm, topic, 3, 3, map[string]*string{"min.insync.replicas": &minISR})
	// The request timeout bounds how long a request to an unreachable leader waits before the client
	// looks for the new one.
	cl := newClient(t, c, kgo.RecordDeliveryTimeout(2*time.Minute), kgo.MaxBufferedRecords(2000),
		kgo.ProduceRequestTimeout(5*time.Second), kgo.RequestTimeoutOverhead(2*time.Second))
	prod := startAckedProducer(ctx, cl, topic, 1000)

	fullISR := func(p kadm.PartitionDetail) bool { return len(p.ISR) == 3 && p.Leader >= 0 }
	leaderOf := func(part int32) int {
		var leader int32 = -1
		waitISR(ctx, t, adm, topic, func(d kadm.PartitionDetail) bool {
			if d.Partition == part {
				leader = d.Leader
			}
			return d.Leader >= 0
		}, "a leader for every partition")
		return int(leader - 1)
	}
	controller := func() int {
		for {
			m, err := adm.BrokerMetadata(ctx)
			if err == nil && m.Controller >= 1 {
				return int(m.Controller - 1)
			}
			select {
			case <-ctx.Done():
				t.Fatalf("no controller: %v", err)
			case <-time.After(250 * time.Millisecond):
			}
		}
	}
	others := func(n int) []int {
		var o []int
		for i := range c.Nodes() {
			if i != n {
				o = append(o, i)
			}
		}
		return o
	}
	scenarios := []struct {
		name string
		cuts func() [][2]int
	}{
		{"partition leader cut off from its followers, clients still reach it", func() [][2]int {
			l := leaderOf(0)
			return [][2]int{{l, others(l)[0]}, {l, others(l)[1]}}
		}},
		{"controller cut off from every node and every client", func() [][2]int {
			ctl := controller()
			return [][2]int{{ctl, others(ctl)[0]}, {ctl, others(ctl)[1]}, {ctl, harness.HostNode}}
		}},
		{"partition leader loses the link to one follower only", func() [][2]int {
			l := leaderOf(1)
			return [][2]int{{l, others(l)[1]}}
		}},
	}
	for _, sc := range scenarios {
		waitISR(ctx, t, adm, topic, fullISR, "full ISRs before: "+sc.name)
		waitAcks(ctx, t, prod, 500, "before: "+sc.name)
		cuts := sc.cuts()
		for _, cut := range cuts {
			if err := c.Cut(cut[0], cut[1]); err != nil {
				t.Fatalf("%s: cut %v: %v", sc.name, cut, err)
			}
		}
		time.Sleep(hold)
		during, failed := prod.counts()
		if err := c.Heal(); err != nil {
			t.Fatalf("%s: heal: %v", sc.name, err)
		}
		waitISR(ctx, t, adm, topic, fullISR, "full ISRs after: "+sc.name)
		waitAcks(ctx, t, prod, 500, "after: "+sc.name)
		n, _ := prod.counts()
		t.Logf("%s: cut %v for %v; %d records acknowledged by the heal (%d failed), %d once healed",
			sc.name, cuts, hold, during, failed, n)
	}
	prod.finish(ctx, t)
	total, stored := prod.verify(ctx, t, c, adm, topic)
	_, failed := prod.counts()
	t.Logf("%d partitions of the network: %d records acknowledged, %d failed, %d stored, all acknowledged ones read back once",
		len(scenarios), total, failed, stored)
}

// waitAcks waits until the producer has had n more records acknowledged than when it was called: the
// cluster takes writes.
func waitAcks(ctx context.Context, t testing.TB, p *ackedProducer, n int, what string) {
	t.Helper()
	start, _ := p.counts()
	for {
		got, failed := p.counts()
		if got-start >= n {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %d of %d more records acknowledged (%d failed) before %v", what, got-start, n, failed, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/integration/harness"
)

// TestNetworkPartition runs a three-node cluster, Apache Kafka and Strom side by side, with every node
// in a network namespace of its own, and partitions the network under load, the way Jepsen does, while
// every process keeps running:
//   - a partition leader is cut off from both followers while clients still reach it, so it takes
//     writes it cannot replicate;
//   - the active controller (the raft or KRaft quorum leader, from DescribeQuorum) is cut off from
//     every node and from the clients;
//   - a leader loses the link to one follower only, a partial partition where the other two nodes
//     still see everybody.
//
// Each cut lasts longer than the broker session timeout, so the cluster fences and re-elects, and then
// heals. After each heal the cluster must return to full ISRs and make progress again. Two loads run at
// once, each on its own topic:
//   - acks: an idempotent acks=all producer (min.insync.replicas=2); at the end every acknowledged
//     record must be readable exactly once, in its partition, in acknowledgement order;
//   - transactions: a transactional producer committing small transactions across the partitions
//     (the transaction coordinator's partition moves too); at the end a read_committed consumer must
//     see every committed transaction whole and once, no aborted one, and any whose commit answer was
//     lost either whole or not at all.
func TestNetworkPartition(t *testing.T) {
	loads := []loadSpec{
		{"acks", 500, func(ctx context.Context, t *testing.T, c *harness.LocalCluster, topic string) partitionLoad {
			// The request timeout bounds how long a request to an unreachable leader waits before
			// the client looks for the new one.
			cl := newClient(t, c, kgo.RecordDeliveryTimeout(2*time.Minute), kgo.MaxBufferedRecords(2000),
				kgo.ProduceRequestTimeout(5*time.Second), kgo.RequestTimeoutOverhead(2*time.Second))
			return startAckedProducer(ctx, cl, topic, 1000)
		}},
		{"transactions", 10, func(ctx context.Context, t *testing.T, c *harness.LocalCluster, topic string) partitionLoad {
			return startTxnLoad(ctx, t, c, topic)
		}},
	}
	for _, tg := range netnsClusters3("") {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel() // separate clusters and networks; most of the time is spent waiting for elections
			partitionScenario(t, tg.start(t), loads)
		})
	}
}

// netnsCluster names a cluster a partition test runs against and how to start it.
type netnsCluster struct {
	name  string
	start func(t testing.TB) *harness.LocalCluster
}

// netnsClusters3 returns the clusters the network partition tests run side by side: three-node Apache
// Kafka and Strom, every node in a network namespace of its own so links between nodes can be cut.
// prefix goes before each name (the subtest's).
func netnsClusters3(prefix string) []netnsCluster {
	return []netnsCluster{
		{prefix + "kafka-" + harness.DefaultKafkaVersion, func(t testing.TB) *harness.LocalCluster {
			return harness.StartKafka(t, harness.Nodes(3), harness.NetNamespaces())
		}},
		{prefix + "strom", func(t testing.TB) *harness.LocalCluster {
			return harness.StartStrom(t, harness.Nodes(3), harness.NetNamespaces())
		}},
	}
}

// cutScenario is one partition of a three-node cluster's network. cuts picks, when the scenario
// starts, the links to cut: pairs of node indexes, harness.HostNode standing for the clients.
type cutScenario struct {
	name string
	cuts func() [][2]int
}

// partitionCuts returns the three partitions both partition tests run on c: the leader of topic's
// partition 0 cut off from both followers while clients still reach it (it takes writes it cannot
// replicate); the active controller, found with DescribeQuorum through cl, cut off from every node
// and every client; the leader of partition 1 losing its link to one follower only.
func partitionCuts(ctx context.Context, t testing.TB, c *harness.LocalCluster, cl *kgo.Client, topic string) []cutScenario {
	adm := kadm.NewClient(cl)
	others := func(n int) []int { return otherNodes(c, n) }
	return []cutScenario{
		{"partition leader cut off from its followers, clients still reach it", func() [][2]int {
			l := leaderIndex(ctx, t, adm, topic, 0)
			return [][2]int{{l, others(l)[0]}, {l, others(l)[1]}}
		}},
		{"controller cut off from every node and every client", func() [][2]int {
			ctl := quorumLeader(ctx, t, cl)
			return [][2]int{{ctl, others(ctl)[0]}, {ctl, others(ctl)[1]}, {ctl, harness.HostNode}}
		}},
		{"partition leader loses the link to one follower only", func() [][2]int {
			l := leaderIndex(ctx, t, adm, topic, 1)
			return [][2]int{{l, others(l)[1]}}
		}},
	}
}

// otherNodes lists the node indexes of c but n.
func otherNodes(c *harness.LocalCluster, n int) []int {
	var o []int
	for i := range c.Nodes() {
		if i != n {
			o = append(o, i)
		}
	}
	return o
}

// runCuts runs each scenario on c in turn: before(name) (when not nil) waits for the workload to make
// progress, then the scenario's links are cut and held longer than both clusters' broker session
// timeouts (Strom's harness 3 s, Kafka's 4 s), so the cluster fences and re-elects, then healed, and
// after(name) waits for progress again and returns a summary for the log.
func runCuts(t *testing.T, c *harness.LocalCluster, scenarios []cutScenario, before func(name string), after func(name string) string) {
	t.Helper()
	const hold = 2 * harness.StromSessionTimeout
	for _, sc := range scenarios {
		if before != nil {
			before(sc.name)
		}
		cuts := sc.cuts()
		for _, cut := range cuts {
			if err := c.Cut(cut[0], cut[1]); err != nil {
				t.Fatalf("%s: cut %v: %v", sc.name, cut, err)
			}
		}
		time.Sleep(hold)
		if err := c.Heal(); err != nil {
			t.Fatalf("%s: heal: %v", sc.name, err)
		}
		healed := time.Now()
		summary := after(sc.name)
		t.Logf("%s: cut %v (node indexes, -1 = clients) for %v; progressing again %.1fs after the heal (%s)",
			sc.name, cuts, hold, time.Since(healed).Seconds(), summary)
	}
}

// loadSpec names a partitionLoad and how to start it on a topic.
type loadSpec struct {
	name string
	// progress is how many more units (records, transactions) must be done before and after each cut.
	progress int
	start    func(ctx context.Context, t *testing.T, c *harness.LocalCluster, topic string) partitionLoad
}

// partitionLoad is a workload TestNetworkPartition runs through the partitions: counts reports
// progress (units done and failed), finish stops it, verify checks everything it was told was done.
type partitionLoad interface {
	counts() (done, failed int)
	finish(ctx context.Context, t testing.TB)
	verify(ctx context.Context, t testing.TB, c harness.Cluster, adm *kadm.Client, topic string) (total, stored int)
}

func partitionScenario(t *testing.T, c *harness.LocalCluster, specs []loadSpec) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cl := newClient(t, c)
	adm := newPollAdmin(t, c)
	minISR := "2"
	topics := make([]string, len(specs))
	loads := make([]partitionLoad, len(specs))
	for i, sp := range specs {
		topics[i] = uniqueName("partition-" + sp.name)
		createTopic(ctx, t, adm, topics[i], 3, 3, map[string]*string{"min.insync.replicas": &minISR})
	}
	for i, sp := range specs {
		loads[i] = sp.start(ctx, t, c, topics[i])
	}
	fullISR := func(p kadm.PartitionDetail) bool { return len(p.ISR) == 3 && p.Leader >= 0 }
	progress := func(when string) {
		t.Helper()
		for i, sp := range specs {
			waitISR(ctx, t, adm, topics[i], fullISR, "full ISRs "+when)
			waitAcks(ctx, t, loads[i], sp.progress, sp.name+" "+when)
		}
	}
	// The cuts pick the partition leaders of the first load's topic.
	scenarios := partitionCuts(ctx, t, c, cl, topics[0])
	runCuts(t, c, scenarios, func(name string) { progress("before: " + name) }, func(name string) string {
		progress("after: " + name)
		var done []string
		for i, sp := range specs {
			n, failed := loads[i].counts()
			done = append(done, fmt.Sprintf("%s %d done, %d failed", sp.name, n, failed))
		}
		return strings.Join(done, "; ")
	})
	for _, ld := range loads {
		ld.finish(ctx, t)
	}
	for i, sp := range specs {
		total, stored := loads[i].verify(ctx, t, c, adm, topics[i])
		_, failed := loads[i].counts()
		t.Logf("%s: %d partitions of the network: %d done, %d failed, %d stored, all checked",
			sp.name, len(scenarios), total, failed, stored)
	}
}

// quorumLeader returns the node index of the metadata quorum's leader (the active controller), asked
// with DescribeQuorum: Kafka's Metadata names a random broker as the controller.
func quorumLeader(ctx context.Context, t testing.TB, cl *kgo.Client) int {
	t.Helper()
	for {
		req := kmsg.NewPtrDescribeQuorumRequest()
		tp := kmsg.NewDescribeQuorumRequestTopic()
		tp.Topic = "__cluster_metadata"
		tp.Partitions = []kmsg.DescribeQuorumRequestTopicPartition{kmsg.NewDescribeQuorumRequestTopicPartition()}
		req.Topics = []kmsg.DescribeQuorumRequestTopic{tp}
		resp, err := req.RequestWith(ctx, cl)
		if err == nil && resp.ErrorCode == 0 && len(resp.Topics) == 1 && len(resp.Topics[0].Partitions) == 1 {
			if p := resp.Topics[0].Partitions[0]; p.ErrorCode == 0 && p.LeaderID >= 1 {
				return int(p.LeaderID - 1)
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no quorum leader: %v", err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// waitAcks waits until the producer has had n more records acknowledged than when it was called: the
// cluster takes writes.
func waitAcks(ctx context.Context, t testing.TB, p partitionLoad, n int, what string) {
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

package integration

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/stromhq/strom/integration/gaps"
	"github.com/stromhq/strom/integration/harness"
)

// TestKillRestart runs a three-node cluster through SIGKILL of a partition leader, writes acks=all
// records while it is down, restarts it on its old data, waits until it is back in every ISR, then kills
// a second node and checks that every acknowledged record is still readable, once and in order.
func TestKillRestart(t *testing.T) {
	for _, tg := range clusters3() {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel() // separate clusters; most of the scenario waits for restarts and elections
			gaps.Run(t, func(t testing.TB) {
				killRestartScenario(t, tg.start(t))
			})
		})
	}
}

func killRestartScenario(t testing.TB, c harness.Cluster) {
	const perPhase = 200
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	start := time.Now()
	phase := func(what string) { t.Logf("%6.1fs %s", time.Since(start).Seconds(), what) }
	cl := newClient(t, c)
	adm := newPollAdmin(t, c)
	topic := uniqueName("fault")
	minISR := "2"
	createTopic(ctx, t, adm, topic, 3, 3, map[string]*string{"min.insync.replicas": &minISR})

	tsBase := time.Now().Add(-time.Hour).Truncate(time.Second)
	acked := makeRecords(topic, 0, perPhase, tsBase)
	produce(ctx, t, cl, acked)

	phase("produced the first records")
	victim := leaderIndex(ctx, t, adm, topic, 0)
	if err := c.Kill(victim); err != nil {
		t.Fatalf("kill node %d: %v", victim, err)
	}
	// Written while the victim is dead: the leaders must shrink their ISRs to the two live replicas
	// and still satisfy min.insync.replicas=2.
	more := makeRecords(topic, perPhase, perPhase, tsBase)
	produce(ctx, t, cl, more)
	acked = append(acked, more...)
	phase(fmt.Sprintf("killed node %d, produced with it down", victim))

	if err := c.Restart(victim); err != nil {
		t.Fatalf("restart node %d: %v", victim, err)
	}
	waitISR(ctx, t, adm, topic, func(p kadm.PartitionDetail) bool { return len(p.ISR) == 3 },
		"every replica back in sync")
	phase("restarted it, ISRs full again")

	// The restarted node now holds a full copy; losing another node must lose nothing.
	second := (victim + 1) % c.Nodes()
	if err := c.Kill(second); err != nil {
		t.Fatalf("kill node %d: %v", second, err)
	}
	gone := int32(second + 1)
	waitISR(ctx, t, adm, topic, func(p kadm.PartitionDetail) bool {
		return p.Leader != gone && p.Leader >= 0 && !slices.Contains(p.ISR, gone)
	}, fmt.Sprintf("leadership and ISR off broker %d", gone))

	phase(fmt.Sprintf("killed node %d, leadership moved", second))
	got := byPartition(consumeN(ctx, t, c, topic, len(acked)))
	phase("consumed every acknowledged record")
	want := byPartition(acked)
	for p, w := range want {
		if len(got[p]) != len(w) {
			t.Errorf("partition %d: read %d records, want %d acknowledged", p, len(got[p]), len(w))
			continue
		}
		for i := range w {
			if err := sameRecord(got[p][i], w[i]); err != nil {
				t.Errorf("partition %d record %d: %v", p, i, err)
				break
			}
		}
	}
	if err := c.Restart(second); err != nil {
		t.Fatalf("restart node %d: %v", second, err)
	}
	phase("restarted it")
}

// leaderIndex returns the node index (broker id - 1) leading topic's partition p.
func leaderIndex(ctx context.Context, t testing.TB, adm *kadm.Client, topic string, p int32) int {
	t.Helper()
	var leader int32 = -1
	waitISR(ctx, t, adm, topic, func(d kadm.PartitionDetail) bool {
		if d.Partition == p {
			leader = d.Leader
		}
		return d.Leader >= 0
	}, "a leader for every partition")
	return int(leader - 1)
}

// waitISR polls topic's metadata until ok holds for every partition, failing t when ctx ends first.
func waitISR(ctx context.Context, t testing.TB, adm *kadm.Client, topic string,
	ok func(kadm.PartitionDetail) bool, what string) {
	t.Helper()
	var last string
	for {
		tds, err := adm.ListTopics(ctx, topic)
		if err == nil {
			td := tds[topic]
			all := td.Err == nil && len(td.Partitions) > 0
			for _, p := range td.Partitions.Sorted() {
				if !ok(p) {
					all = false
				}
			}
			if all {
				return
			}
			last = fmt.Sprintf("%+v", td.Partitions.Sorted())
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: waiting for %s: %v; last metadata: %s", topic, what, ctx.Err(), last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

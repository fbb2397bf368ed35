package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/integration/harness"
)

// TestStromKillLoop kills (SIGKILL) a random node of a three-node Strom cluster again and again while
// an idempotent producer writes with acks=all and min.insync.replicas=2, restarting each victim and
// waiting for full ISRs before the next kill. Afterwards every acknowledged record must be readable
// exactly once, in its partition in the order it was acknowledged, and no record may be read twice.
// Kafka's own behaviour under a kill is checked side by side by TestKillRestart; this loop is Strom's
// longer soak, bounded by rounds and by time. The victims come from a logged seed.
func TestStromKillLoop(t *testing.T) {
	const rounds = 4
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := harness.StartStrom(t, harness.Nodes(3))
	adm := kadm.NewClient(newClient(t, c))
	topic := uniqueName("killloop")
	minISR := "2"
	createTopic(ctx, t, adm, topic, 4, 3, map[string]*string{"min.insync.replicas": &minISR})
	seed := uint64(time.Now().UnixNano())
	t.Logf("victim seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	cl := newClient(t, c, kgo.RecordDeliveryTimeout(90*time.Second), kgo.MaxBufferedRecords(2000))
	var (
		mu      sync.Mutex
		acked   = map[int32][]string{} // per partition, in acknowledgement order
		failed  int
		stopped = make(chan struct{})
		wg      sync.WaitGroup
	)
	wg.Add(1)
	go func() { // the producer: stops when told, after at most 200k records
		defer wg.Done()
		for i := 0; i < 200_000; i++ {
			select {
			case <-stopped:
				return
			default:
			}
			v := fmt.Sprintf("r%06d", i)
			cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(v), Value: []byte(v)}, func(r *kgo.Record, err error) {
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failed++
					return
				}
				acked[r.Partition] = append(acked[r.Partition], string(r.Value))
			})
		}
	}()
	for round := range rounds {
		time.Sleep(time.Second) // let records flow between kills
		victim := rng.IntN(c.Nodes())
		if err := c.Kill(victim); err != nil {
			t.Fatalf("round %d: kill node %d: %v", round, victim, err)
		}
		time.Sleep(1500 * time.Millisecond)
		if err := c.Restart(victim); err != nil {
			t.Fatalf("round %d: restart node %d: %v", round, victim, err)
		}
		waitISR(ctx, t, adm, topic, func(p kadm.PartitionDetail) bool { return len(p.ISR) == 3 && p.Leader >= 0 },
			fmt.Sprintf("full ISRs after round %d", round))
		mu.Lock()
		n := 0
		for _, vs := range acked {
			n += len(vs)
		}
		t.Logf("round %d: killed and restarted node %d; %d records acknowledged, %d failed so far", round, victim, n, failed)
		mu.Unlock()
	}
	close(stopped)
	wg.Wait()
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}

	mu.Lock()
	defer mu.Unlock()
	total := 0
	for _, vs := range acked {
		total += len(vs)
	}
	if total == 0 {
		t.Fatal("no record was acknowledged")
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	stored := 0
	ends.Each(func(o kadm.ListedOffset) { stored += int(o.Offset) })
	got := byPartition(consumeN(ctx, t, c, topic, stored))
	seen := map[string]int32{}
	for p, rs := range got {
		for _, r := range rs {
			if q, dup := seen[string(r.Value)]; dup {
				t.Errorf("record %s read twice (partitions %d and %d)", r.Value, q, p)
			}
			seen[string(r.Value)] = p
		}
	}
	for p, want := range acked {
		var vals []string
		for _, r := range got[p] {
			vals = append(vals, string(r.Value))
		}
		// The acknowledged records must be a subsequence of the partition, in order: a record
		// whose acknowledgement was lost may sit between them, nothing acknowledged may be missing.
		i := 0
		for _, v := range vals {
			if i < len(want) && v == want[i] {
				i++
			}
		}
		if i != len(want) {
			t.Errorf("partition %d: acknowledged record %s (%d of %d) missing or out of order; the partition holds %d records",
				p, want[i], i, len(want), len(vals))
		}
		if !slices.IsSorted(want) {
			t.Logf("partition %d: acknowledgements arrived out of production order", p)
		}
	}
	t.Logf("%d rounds: %d records acknowledged, %d failed, %d stored, all acknowledged ones read back once",
		rounds, total, failed, stored)
}

package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
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
	adm := newPollAdmin(t, c)
	topic := uniqueName("killloop")
	minISR := "2"
	createTopic(ctx, t, adm, topic, 4, 3, map[string]*string{"min.insync.replicas": &minISR})
	seed := uint64(time.Now().UnixNano())
	t.Logf("victim seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	cl := newClient(t, c, kgo.RecordDeliveryTimeout(90*time.Second), kgo.MaxBufferedRecords(2000))
	prod := startAckedProducer(ctx, cl, topic, 4000)
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
		waitAcks(ctx, t, prod, 500, fmt.Sprintf("writes after round %d", round))
		n, failed := prod.counts()
		t.Logf("round %d: killed and restarted node %d; %d records acknowledged, %d failed so far", round, victim, n, failed)
	}
	prod.finish(ctx, t)
	total, stored := prod.verify(ctx, t, c, adm, topic)
	_, failed := prod.counts()
	t.Logf("%d rounds: %d records acknowledged, %d failed, %d stored, all acknowledged ones read back once",
		rounds, total, failed, stored)
}

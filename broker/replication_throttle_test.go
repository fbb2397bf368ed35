package broker

import (
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestThrottledReplica(t *testing.T) {
	for _, tc := range []struct {
		list     string
		part, id int32
		want     bool
	}{
		{"", 0, 1, false},
		{"*", 3, 7, true},
		{" * ", 3, 7, true},
		{"0:1,1:2", 0, 1, true},
		{"0:1,1:2", 1, 2, true},
		{"0:1,1:2", 1, 1, false},
		{"0:1, 1:2 ", 1, 2, true},
		{"0:1,bad,1:x,2:3", 2, 3, true},
		{"0:1,bad", 0, 2, false},
		{"12:3", 1, 3, false},
	} {
		if got := throttledReplica(tc.list, tc.part, tc.id); got != tc.want {
			t.Errorf("throttledReplica(%q, %d, %d) = %v, want %v", tc.list, tc.part, tc.id, got, tc.want)
		}
	}
}

// TestReplicationThrottle: a replica added by a reassignment is held back by
// a replication throttle, on the leader's side and on the follower's, while
// it is out of the ISR: with a 100 KB/s rate it has far from all of a 4 MB
// partition after 3 s (unthrottled, it copies it in well under a second),
// and once the throttle is cleared it catches up and joins the ISR. An
// in-sync follower of a throttled partition is never held: acks=all
// produces keep being answered.
func TestReplicationThrottle(t *testing.T) {
	t.Parallel()
	for _, side := range []struct {
		name                 string
		rateKey, replicasKey string
		broker               int32 // whose rate is set
		replicas             string
		throttledIndex       int // node index whose throttle holds
	}{
		{"leader", cfgLeaderThrottledRate, cfgLeaderThrottledReplicas, 1, "0:1", 0},
		{"follower", cfgFollowerThrottledRate, cfgFollowerThrottledReplicas, 2, "0:2", 1},
	} {
		t.Run(side.name, func(t *testing.T) {
			t.Parallel()
			c := startTestCluster(t, 2, nil)
			ctx := testCtx(t)
			adm := kadm.NewClient(c.client())
			c.createWithAssignment("moving", nil, []int32{1})
			cl := c.client(kgo.DefaultProduceTopic("moving"), kgo.ProducerBatchMaxBytes(256<<10))
			// Random values: the client's default compression would shrink
			// repeated bytes to nothing.
			var recs []*kgo.Record
			for i := range 4000 {
				value := make([]byte, 1000)
				_, _ = rand.Read(value)
				recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: value})
			}
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			end := c.brokers[0].parts.get("moving", 0).log.EndOffset()

			rate := "100000"
			if _, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: side.rateKey, Value: &rate}}, side.broker); err != nil {
				t.Fatal(err)
			}
			if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: side.replicasKey, Value: &side.replicas}}, "moving"); err != nil {
				t.Fatal(err)
			}
			if err := c.reassign("moving", 0, []int32{1, 2}); err != nil {
				t.Fatal(err)
			}
			c.waitHosted(1, "moving", 0)
			time.Sleep(3 * time.Second)
			copied := c.brokers[1].parts.get("moving", 0).log.EndOffset()
			held := c.brokers[side.throttledIndex].replThrottle.held.Load()
			if copied >= end || held == 0 {
				t.Fatalf("after 3 s at 100 KB/s the new replica has %d of %d records and the throttle held it %d times; want it held back", copied, end, held)
			}
			t.Logf("after 3 s at 100 KB/s: %d of %d records copied, held %d times", copied, end, held)

			if _, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: side.rateKey}}, side.broker); err != nil {
				t.Fatal(err)
			}
			c.waitInSync("moving", 0, 2)

			// In sync now: the throttle, set again, holds nothing back.
			if _, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: side.rateKey, Value: &rate}}, side.broker); err != nil {
				t.Fatal(err)
			}
			before := c.brokers[side.throttledIndex].replThrottle.held.Load()
			for i := range 3 {
				if err := cl.ProduceSync(ctx, recs[:500]...).FirstErr(); err != nil {
					t.Fatalf("acks=all produce %d to an in-sync throttled partition: %v", i, err)
				}
			}
			if got := c.brokers[side.throttledIndex].replThrottle.held.Load(); got != before {
				t.Fatalf("an in-sync replica was held back %d times", got-before)
			}
		})
	}
}

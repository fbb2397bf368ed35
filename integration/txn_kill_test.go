package integration

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/integration/harness"
)

// TestTransactionsKill9 runs concurrent transactional producers against a
// single node, SIGKILLs it while transactions are open or completing,
// restarts it on its data, lets new instances of the same transactional ids
// re-initialize and go on, and checks with a read_committed consumer that
// every transaction is wholly visible or wholly absent, and that every
// acknowledged commit is there. Same checker for Apache Kafka and Strom.
func TestTransactionsKill9(t *testing.T) {
	for _, tg := range []target{
		{"kafka-" + harness.DefaultKafkaVersion, harness.DefaultKafkaVersion, func(t testing.TB) harness.Cluster { return harness.StartKafka(t) }},
		{"strom", harness.DefaultKafkaVersion, func(t testing.TB) harness.Cluster { return harness.StartStrom(t) }},
	} {
		t.Run(tg.name, func(t *testing.T) { txnKillScenario(t, tg.start(t)) })
	}
}

func txnKillScenario(t *testing.T, c harness.Cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	adm := kadm.NewClient(newClient(t, c))
	topic := uniqueName("txnkill")
	createTopic(ctx, t, adm, topic, 3, 1, nil)
	prefix := uniqueName("tk")
	const producers, perTxn = 4, 6
	var mu sync.Mutex
	acked := map[string]bool{}

	run := func(ctx context.Context, round, txns int) {
		var wg sync.WaitGroup
		for p := 0; p < producers; p++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(c.Bootstrap(), ",")...),
					kgo.TransactionalID(fmt.Sprintf("%s-%d", prefix, p)), kgo.DefaultProduceTopic(topic),
					kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
				if err != nil {
					t.Error(err)
					return
				}
				defer cl.Close()
				for i := 0; i < txns && ctx.Err() == nil; i++ {
					id := fmt.Sprintf("%d/%d-%d", p, round, i)
					if err := cl.BeginTransaction(); err != nil {
						return
					}
					for j := 0; j < perTxn; j++ {
						cl.Produce(ctx, &kgo.Record{Value: []byte(id + "/" + strconv.Itoa(j))}, nil)
					}
					if err := cl.Flush(ctx); err != nil {
						return
					}
					if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
						return
					}
					mu.Lock()
					acked[id] = true
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}

	ctx0, cancel0 := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { run(ctx0, 0, 100000); close(done) }()
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 40 {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("producers made no progress")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := c.Kill(0); err != nil {
		t.Fatal(err)
	}
	cancel0()
	<-done
	mu.Lock()
	before := len(acked)
	mu.Unlock()
	if err := c.Restart(0); err != nil {
		t.Fatal(err)
	}
	run(ctx, 1, 3)
	for p := 0; p < producers; p++ {
		for i := 0; i < 3; i++ {
			if id := fmt.Sprintf("%d/1-%d", p, i); !acked[id] {
				t.Errorf("transaction %s after the restart was not committed", id)
			}
		}
	}

	lso, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	// Every transaction is complete now, so the committed records are all
	// records below the LSO: read until each partition reaches it.
	cl := newClient(t, c, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	want := map[int32]int64{}
	lso.Each(func(o kadm.ListedOffset) { want[o.Partition] = o.Offset })
	pos := map[int32]int64{}
	per := map[string]map[string]int{}
	for {
		complete := true
		for p, end := range want {
			if pos[p] < end {
				complete = false
			}
		}
		if complete {
			break
		}
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consume: %v (at %v, want %v)", ctx.Err(), pos, want)
		}
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			pos[fp.Partition] = max(pos[fp.Partition], fp.LastStableOffset)
			for _, r := range fp.Records {
				v := string(r.Value)
				k := v[:strings.LastIndexByte(v, '/')]
				if per[k] == nil {
					per[k] = map[string]int{}
				}
				per[k][v]++
			}
		})
	}
	for k, recs := range per {
		if len(recs) != perTxn {
			t.Errorf("transaction %s partly visible: %d of %d records", k, len(recs), perTxn)
		}
		for v, n := range recs {
			if n != 1 {
				t.Errorf("record %s seen %d times", v, n)
			}
		}
	}
	for k := range acked {
		if per[k] == nil {
			t.Errorf("acknowledged transaction %s missing", k)
		}
	}
	t.Logf("%d transactions acknowledged before the kill, %d visible in total", before, len(per))
}

package integration

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/integration/harness"
	"github.com/stromhq/strom/replicate"
)

// TestMirrorMaker2 runs Apache Kafka's MirrorMaker 2 (the tool Strom's replicator is measured against)
// from the Kafka 4.3.1 cluster to the Kafka 3.9.2 one and reads the copy: the connect-mirror jars
// resolve and run, and the harness can stage MM2 comparisons.
func TestMirrorMaker2(t *testing.T) {
	src := pool.Kafka(t, "single-"+harness.DefaultKafkaVersion)
	dst := pool.Kafka(t, "single-"+harness.Kafka39Version, harness.KafkaVersion(harness.Kafka39Version))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	topic := uniqueName("mm2")
	cl := newClient(t, src)
	createTopic(ctx, t, kadm.NewClient(cl), topic, 2, 1, nil)
	rs := makeRecords(topic, 0, 100, time.Now().Add(-time.Minute).Truncate(time.Millisecond))
	produce(ctx, t, cl, rs)

	mm := harness.StartMirrorMaker(t, harness.DefaultKafkaVersion, src, dst, topic, nil)

	// MM2 creates src.<topic> on the destination once it has discovered the topic; until then a
	// consumer of it would only see UNKNOWN_TOPIC_OR_PARTITION, so wait for the topic first.
	adm := newPollAdmin(t, dst)
	copyName := "src." + topic
	for {
		tds, err := adm.ListTopics(ctx, copyName)
		if err == nil && tds[copyName].Err == nil && len(tds[copyName].Partitions) == 2 {
			break
		}
		if mm.Exited() {
			t.Fatalf("mirror maker exited; log %s", mm.LogPath())
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never appeared on the destination: %v", copyName, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
	got := byPartition(consumeN(ctx, t, dst, copyName, len(rs), kgo.FetchMaxWait(time.Second)))
	for p, want := range byPartition(rs) {
		if len(got[p]) != len(want) {
			t.Errorf("partition %d: %d records copied, want %d", p, len(got[p]), len(want))
			continue
		}
		for i, w := range want {
			g := got[p][i]
			if string(g.Key) != string(w.Key) || string(g.Value) != string(w.Value) || !g.Timestamp.Equal(w.Timestamp) {
				t.Errorf("partition %d record %d: copied %s=%s@%v, want %s=%s@%v", p, i, g.Key, g.Value,
					g.Timestamp, w.Key, w.Value, w.Timestamp)
				break
			}
		}
	}
}

// TestMirrorMaker2ExactlyOnce runs MirrorMaker 2 with exactly-once on, configured as bench/mirrorcompare
// measures it (Kafka's geo-replication docs, KIP-618, KIP-710: exactly.once.source.support=enabled for the
// target, the dedicated-mode internal REST server on a free port, the source read read_committed), over a
// source holding committed and aborted transactions. strom verify must find the copy identical to the
// committed source records (no aborted record copied, none lost), and the destination must hold
// transaction markers, i.e. MM2 really wrote transactionally: the benchmark compares against a working
// exactly-once MM2.
func TestMirrorMaker2ExactlyOnce(t *testing.T) {
	src, dst := mirrorSource(t), mirrorDest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	prefix := uniqueName("mm2eos")
	topic := prefix + ".t"
	committed := seedTransactional(ctx, t, src, kadm.NewClient(newClient(t, src)), topic)
	ports, err := harness.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	mm := harness.StartMirrorMaker(t, harness.DefaultKafkaVersion, src, dst, topic, map[string]string{
		"dst.exactly.once.source.support":     "enabled",
		"dedicated.mode.enable.internal.rest": "true",
		"listeners":                           fmt.Sprintf("http://127.0.0.1:%d", ports[0]),
		"src.consumer.isolation.level":        "read_committed",
	})
	cfg := mirrorConfig(src, dst, prefix, "unused")
	cfg.Rename = "prefix:src."
	for {
		_, err := replicate.Verify(ctx, cfg, io.Discard)
		if err == nil {
			break
		}
		if mm.Exited() {
			t.Fatalf("mirror maker exited; log %s", mm.LogPath())
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the MirrorMaker 2 exactly-once copy never matched the committed source; last verify: %v", err)
		case <-time.After(time.Second):
		}
	}
	ends, parts := endOffsetSum(ctx, kadm.NewClient(newClient(t, dst)), "src."+topic)
	if parts != 3 || ends <= int64(committed) {
		t.Errorf("destination src.%s: end offsets add up to %d over %d partitions; want more than the %d committed records (transaction markers)",
			topic, ends, parts, committed)
	}
}

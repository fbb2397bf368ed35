package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/integration/harness"
	"github.com/stromhq/strom/replicate"
)

// TestMirrorSourcePartition runs `strom mirror --mode exactly-once` out of a three-node source cluster,
// Apache Kafka (an on-premises cluster being migrated away from) and Strom side by side, whose nodes sit
// in network namespaces of their own, into a single-node Kafka, while an idempotent acks=all producer
// keeps writing to the source (replication factor 3, min.insync.replicas 2), and partitions the
// source's network three times:
//   - the leader of a source partition cut off from its followers while the mirror and the producer
//     still reach it: it may take writes it cannot replicate, which the mirror must never copy (they
//     are above the high watermark, and the new leader truncates them away);
//   - the leader of a source partition cut off from the mirror (and the producer, which shares its
//     network) only: the cluster sees nothing wrong and keeps the leader, so the mirror must wait and
//     continue where it stopped;
//   - the source's active controller cut off from every node and every client.
//
// After each heal the mirror must copy every partition again; once the producer stops, every record it
// had acknowledged must be on the source once and in order, and the destination must equal the source
// (verify, no duplicate allowed): every acknowledged record copied exactly once.
//
// The at-least-once mirror reads the source as a consumer group and commits its positions there, so it
// runs the same cuts and a fourth, its group's coordinator on the source cut off from everything; it may
// copy a record twice (verify allows duplicates) but must lose none.
func TestMirrorSourcePartition(t *testing.T) {
	for _, mode := range []replicate.Mode{replicate.ExactlyOnce, replicate.AtLeastOnce} {
		t.Run(mode.String(), func(t *testing.T) { // one mode at a time: four three-node clusters are too many for CI's two cores
			for _, tg := range netnsClusters3("from-") {
				t.Run(tg.name, func(t *testing.T) {
					t.Parallel()
					mirrorSourcePartitionScenario(t, tg.start(t), mirrorDest(t), mode)
				})
			}
		})
	}
}

func mirrorSourcePartitionScenario(t *testing.T, src, dst *harness.LocalCluster, mode replicate.Mode) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	start := time.Now()
	prefix := uniqueName("mspart")
	topic := prefix + ".data"
	scl := newClient(t, src, kgo.MetadataMinAge(100*time.Millisecond))
	sadm := kadm.NewClient(scl)
	minISR := "2"
	createTopic(ctx, t, sadm, topic, 3, 3, map[string]*string{"min.insync.replicas": &minISR})
	waitTopicEverywhere(ctx, t, scl, topic, 3)
	// As in TestNetworkPartition: the request timeout bounds how long a produce to an unreachable
	// leader waits before the client looks for the new one. Stopped by finish below, or by the end of
	// ctx when the test fails first.
	pcl := newClient(t, src, kgo.RecordDeliveryTimeout(2*time.Minute), kgo.MaxBufferedRecords(2000),
		kgo.ProduceRequestTimeout(5*time.Second), kgo.RequestTimeoutOverhead(2*time.Second))
	prod := startAckedProducer(ctx, pcl, topic, 1000)

	m := startMirrorProc(ctx, t, src, dst, prefix, mode)
	m.copied(500, "first records")
	cuts := sourceCuts(ctx, t, src, scl, topic)
	if mode == replicate.AtLeastOnce {
		cuts = append(cuts, cutScenario{"the mirror's source group coordinator cut off from every node and every client", func() [][2]int {
			co := groupCoordinator(ctx, t, sadm, m.name)
			o := otherNodes(src, co)
			return [][2]int{{co, o[0]}, {co, o[1]}, {co, harness.HostNode}}
		}})
	}
	runCuts(t, src, cuts, nil, func(name string) string {
		m.copied(500, "after: "+name)
		acked, failed := prod.counts()
		return fmt.Sprintf("the mirror copies; %d records acknowledged, %d failed", acked, failed)
	})
	prod.finish(ctx, t)
	acked, stored := prod.verify(ctx, t, src, sadm, topic)
	_, failed := prod.counts()
	dups := m.requireCopied(stored)
	t.Logf("%s: %d records (%d acknowledged, %d failed) copied, %d of them twice, through %d partitions of the source's network in %.1fs",
		mode, stored, acked, failed, dups, len(cuts), time.Since(start).Seconds())
	m.logRestarts()
}

// groupCoordinator returns the node index of group's coordinator on the cluster adm talks to.
func groupCoordinator(ctx context.Context, t testing.TB, adm *kadm.Client, group string) int {
	t.Helper()
	for {
		co, ok := adm.FindGroupCoordinators(ctx, group)[group]
		if ok && co.Err == nil && co.NodeID >= 1 {
			return int(co.NodeID - 1)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no coordinator for group %s: %v", group, co.Err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// sourceCuts returns the three partitions TestMirrorSourcePartition runs on the source c (cl, a client
// of c, finds leaders and the controller): the leader of topic's partition 0 cut off from both
// followers, clients still reaching it; the leader of partition 1 cut off from the clients (the mirror)
// only; the active controller cut off from every node and every client.
func sourceCuts(ctx context.Context, t testing.TB, c *harness.LocalCluster, cl *kgo.Client, topic string) []cutScenario {
	adm := kadm.NewClient(cl)
	return []cutScenario{
		{"source partition leader cut off from its followers, the mirror still reaches it", func() [][2]int {
			l := leaderIndex(ctx, t, adm, topic, 0)
			o := otherNodes(c, l)
			return [][2]int{{l, o[0]}, {l, o[1]}}
		}},
		{"source partition leader cut off from the mirror only", func() [][2]int {
			return [][2]int{{leaderIndex(ctx, t, adm, topic, 1), harness.HostNode}}
		}},
		{"source controller cut off from every node and every client", func() [][2]int {
			ctl := quorumLeader(ctx, t, cl)
			o := otherNodes(c, ctl)
			return [][2]int{{ctl, o[0]}, {ctl, o[1]}, {ctl, harness.HostNode}}
		}},
	}
}

// TestMirrorSourceOutage cuts the exactly-once mirror (and the producer beside it) off from every node
// of a three-node source for long enough that its sessions fail, as a source maintenance window or a
// broken VPN link would: the sessions that fail meanwhile must be restarted, not end the mirror, and
// after the heal it must continue and copy every acknowledged record exactly once.
//
// The outage lasts until two sessions failed in it, not for a fixed time: the one copying when the cut
// began fails at its next topic discovery, and a new one in its own setup, the failure that used to end
// the mirror. Here that takes 20-35 s (discovery runs every 10 s, a request on a connection the cut left
// open waits out kgo's 10 s read overhead, a dial to a cut node fails at once). The mirror runs with
// --retry-timeout 8s so that a cut whose dials hang instead would still fail each session within about
// 10 s, not the default 30 s.
func TestMirrorSourceOutage(t *testing.T) {
	const retryTimeout = 8 * time.Second
	for _, tg := range netnsClusters3("from-") {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			src, dst := tg.start(t), mirrorDest(t)
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			prefix := uniqueName("msout")
			topic := prefix + ".data"
			scl := newClient(t, src)
			sadm := kadm.NewClient(scl)
			minISR := "2"
			createTopic(ctx, t, sadm, topic, 3, 3, map[string]*string{"min.insync.replicas": &minISR})
			waitTopicEverywhere(ctx, t, scl, topic, 3)
			pcl := newClient(t, src, kgo.RecordDeliveryTimeout(2*time.Minute), kgo.MaxBufferedRecords(2000),
				kgo.ProduceRequestTimeout(5*time.Second), kgo.RequestTimeoutOverhead(2*time.Second))
			prod := startAckedProducer(ctx, pcl, topic, 500)
			m := startMirrorProc(ctx, t, src, dst, prefix, replicate.ExactlyOnce, "--retry-timeout", retryTimeout.String())
			m.copied(500, "first records")
			before := len(m.restarts())
			for i := range src.Nodes() {
				if err := src.Cut(i, harness.HostNode); err != nil {
					t.Fatal(err)
				}
			}
			cut := time.Now()
			octx, ocancel := context.WithTimeout(ctx, 2*time.Minute) // bounds the outage whatever happens
			defer ocancel()
			for failed := 0; failed < 2; failed = len(m.restarts()) - before {
				select {
				case err := <-m.exited:
					m.exited <- err // for the cleanup
					t.Fatalf("the mirror exited %.1fs into the source outage, %d sessions having failed in it: %v\n%s",
						time.Since(cut).Seconds(), failed, err, tail(m.logPath))
				case <-octx.Done():
					t.Fatalf("%d sessions failed in %v of source outage, want 2\n%s", failed, time.Since(cut).Round(time.Second), tail(m.logPath))
				case <-time.After(250 * time.Millisecond):
				}
			}
			outage := time.Since(cut)
			if err := src.Heal(); err != nil {
				t.Fatal(err)
			}
			m.copied(500, "after the outage")
			prod.finish(ctx, t)
			acked, stored := prod.verify(ctx, t, src, sadm, topic)
			m.requireCopied(stored)
			t.Logf("%d records (%d acknowledged) copied exactly once across a %.1fs source outage", stored, acked, outage.Seconds())
			m.logRestarts()
		})
	}
}

package integration

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/integration/harness"
)

// Kafka's reassignment and leader-election tools, by main class (the same in 3.9 and 4.x).
const (
	toolReassignPartitions harness.Tool = "org.apache.kafka.tools.reassign.ReassignPartitionsCommand"
	toolLeaderElection     harness.Tool = "org.apache.kafka.tools.LeaderElectionCommand"
)

// TestReassignAndElectTools drives three-node clusters (Apache Kafka and Strom) with Kafka's own
// operator tools: kafka-reassign-partitions --execute moves a partition from brokers {1,2} to {2,3}
// and --verify reports it completed; a second reassignment reorders the replicas so broker 3 is
// preferred, and kafka-leader-election --election-type PREFERRED moves the leadership there. Records
// written before are all read back after.
func TestReassignAndElectTools(t *testing.T) {
	for _, tg := range clusters3() {
		t.Run(tg.name, func(t *testing.T) { reassignToolsScenario(t, tg.start(t), tg.kafkaVersion) })
	}
}

func reassignToolsScenario(t *testing.T, c harness.Cluster, v string) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bs := c.Bootstrap()
	topic := uniqueName("reassign")
	all := []int32{1, 2, 3}
	cl := newClient(t, c, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(20))
	waitViews(ctx, t, cl, all, "", "every broker listed", func(v nodeView) bool { return slices.Equal(v.Brokers, all) })

	harness.RunKafkaTool(t, v, harness.ToolTopics, "--bootstrap-server", bs, "--create", "--topic", topic,
		"--replica-assignment", "1:2")
	var recs []*kgo.Record
	for i := range 100 {
		recs = append(recs, &kgo.Record{Topic: topic, Value: []byte(fmt.Sprintf("r%03d", i))})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}

	// throttles returns the replication throttle configs set on the topic and on the brokers.
	throttles := func() map[string]string {
		t.Helper()
		adm := kadm.NewClient(cl)
		set := map[string]string{}
		trs, err := adm.DescribeTopicConfigs(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		brs, err := adm.DescribeBrokerConfigs(ctx, all...)
		if err != nil {
			t.Fatal(err)
		}
		for _, rc := range append(trs, brs...) {
			for _, c := range rc.Configs {
				if strings.Contains(c.Key, "replication.throttled") && c.Value != nil &&
					(c.Source == kmsg.ConfigSourceDynamicTopicConfig || c.Source == kmsg.ConfigSourceDynamicBrokerConfig) {
					set[rc.Name+"/"+c.Key] = *c.Value
				}
			}
		}
		return set
	}
	reassign := func(replicas string, extra ...string) {
		t.Helper()
		plan := filepath.Join(t.TempDir(), "plan.json")
		js := fmt.Sprintf(`{"version":1,"partitions":[{"topic":%q,"partition":0,"replicas":[%s]}]}`, topic, replicas)
		if err := os.WriteFile(plan, []byte(js), 0o644); err != nil {
			t.Fatal(err)
		}
		out := harness.RunKafkaTool(t, v, toolReassignPartitions, append([]string{"--bootstrap-server", bs,
			"--reassignment-json-file", plan, "--execute"}, extra...)...)
		if !strings.Contains(out, "Successfully started partition reassignment") {
			t.Fatalf("kafka-reassign-partitions --execute:\n%s", out)
		}
		if len(extra) > 0 {
			// --throttle: the tool set the rate on the brokers involved and named the moving
			// replicas on the topic (leader side: the current replicas; follower side: the new one).
			got := throttles()
			want := map[string]string{
				topic + "/leader.replication.throttled.replicas":   "0:1,0:2",
				topic + "/follower.replication.throttled.replicas": "0:3",
			}
			for _, b := range []string{"1", "2", "3"} {
				want[b+"/leader.replication.throttled.rate"] = extra[1]
				want[b+"/follower.replication.throttled.rate"] = extra[1]
			}
			if !maps.Equal(got, want) {
				t.Fatalf("throttles after --execute --throttle:\n got %v\nwant %v", got, want)
			}
		}
		for {
			out = harness.RunKafkaTool(t, v, toolReassignPartitions, "--bootstrap-server", bs,
				"--reassignment-json-file", plan, "--verify")
			if strings.Contains(out, "Reassignment of partition "+topic+"-0 is completed") {
				// A --verify that finds every move done clears the throttles. The tool's
				// AlterConfigs answer once the controller has the change; the broker the
				// describe reaches may apply it a moment later, as with Kafka's metadata
				// propagation, so the check waits a bounded while.
				deadline := time.Now().Add(10 * time.Second)
				for got := throttles(); len(got) != 0; got = throttles() {
					if time.Now().After(deadline) {
						t.Fatalf("throttles left 10s after --verify completed: %v\n%s", got, out)
					}
					time.Sleep(100 * time.Millisecond)
				}
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("reassignment to [%s] not completed: %v; last --verify:\n%s", replicas, ctx.Err(), out)
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	reassign("2,3", "--throttle", "50000000")
	moved := waitViews(ctx, t, cl, all, topic, "replicas {2,3} everywhere", func(v nodeView) bool {
		return len(v.Parts) == 1 && slices.Equal(v.Parts[0].Replicas, []int32{2, 3}) && v.Parts[0].Leader == 2
	})

	reassign("3,2") // a reorder: completes at once, leader 2 stays
	waitViews(ctx, t, cl, all, topic, "replicas [3 2] everywhere", func(v nodeView) bool {
		return len(v.Parts) == 1 && slices.Equal(v.Parts[0].Replicas, []int32{3, 2}) && v.Parts[0].Leader == 2 &&
			len(v.Parts[0].ISR) == 2
	})
	out := harness.RunKafkaTool(t, v, toolLeaderElection, "--bootstrap-server", bs, "--election-type", "PREFERRED",
		"--topic", topic, "--partition", "0")
	if !strings.Contains(out, "Successfully completed leader election (PREFERRED) for partitions "+topic+"-0") {
		t.Fatalf("kafka-leader-election:\n%s", out)
	}
	waitViews(ctx, t, cl, all, topic, "broker 3 leading", func(v nodeView) bool {
		return len(v.Parts) == 1 && v.Parts[0].Leader == 3 && v.Parts[0].LeaderEpoch > moved.Parts[0].LeaderEpoch
	})
	out = harness.RunKafkaTool(t, v, toolLeaderElection, "--bootstrap-server", bs, "--election-type", "PREFERRED",
		"--all-topic-partitions")
	if strings.Contains(out, "Error") {
		t.Fatalf("kafka-leader-election --all-topic-partitions:\n%s", out)
	}

	consumer := newClient(t, c, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []string
	for len(got) < 100 {
		fs := consumer.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of 100: %v", len(got), ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	for i, s := range got {
		if want := fmt.Sprintf("r%03d", i); s != want {
			t.Fatalf("record %d: %q, want %q", i, s, want)
		}
	}
}

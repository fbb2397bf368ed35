package integration

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/integration/gaps"
	"github.com/stromhq/strom/integration/harness"
)

// TestConsumerGroupsCLI drives a group's offsets with Kafka's own kafka-consumer-groups (the Java admin
// client behind it): --list, --describe with the right CURRENT-OFFSET, LOG-END-OFFSET and LAG per
// partition, --describe --members and --state with a live member, --reset-offsets --to-earliest --execute (checked through the protocol), and --delete (the
// group and its offsets are gone).
func TestConsumerGroupsCLI(t *testing.T) {
	for _, tg := range groupTargets() {
		t.Run(tg.name, func(t *testing.T) {
			c := tg.start(t)
			gaps.Run(t, func(t testing.TB) { consumerGroupsCLI(t, c, tg.kafkaVersion) })
		})
	}
}

func consumerGroupsCLI(t testing.TB, c harness.Cluster, v string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	cl := newClient(t, c)
	adm := kadm.NewClient(cl)
	topic, group := uniqueName("cli-groups"), uniqueName("clig")
	createTopic(ctx, t, adm, topic, 3, 1, nil)
	ends := []int64{10, 20, 30}
	var rs []*kgo.Record
	for p, n := range ends {
		for i := range n {
			rs = append(rs, &kgo.Record{Topic: topic, Partition: int32(p), Value: []byte(strconv.Itoa(int(i)))})
		}
	}
	manual := newClient(t, c, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produce(ctx, t, manual, rs)
	committed := []int64{4, 20, 7}
	var offs kadm.Offsets
	for p, o := range committed {
		offs.Add(kadm.Offset{Topic: topic, Partition: int32(p), At: o, LeaderEpoch: -1})
	}
	if resp, err := adm.CommitOffsets(ctx, group, offs); err != nil || resp.Error() != nil {
		t.Fatalf("commit offsets of %s: %v %v", group, err, resp.Error())
	}

	bs := c.Bootstrap()
	list := harness.RunKafkaTool(t, v, harness.ToolConsumerGroups, "--bootstrap-server", bs, "--list")
	if !strings.Contains(list, group) {
		t.Errorf("kafka-consumer-groups --list lacks %s:\n%s", group, list)
	}

	// describe checks the CLI's per-partition view against want (committed offsets).
	describe := func(when string, want []int64) {
		out := harness.RunKafkaTool(t, v, harness.ToolConsumerGroups, "--bootstrap-server", bs, "--describe",
			"--group", group)
		rows := 0
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			// GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID
			if len(f) < 6 || f[0] != group || f[1] != topic {
				continue
			}
			rows++
			p, err := strconv.Atoi(f[2])
			if err != nil || p < 0 || p >= len(ends) {
				t.Errorf("%s: bad partition in %q", when, line)
				continue
			}
			wantRow := []string{strconv.FormatInt(want[p], 10), strconv.FormatInt(ends[p], 10),
				strconv.FormatInt(ends[p]-want[p], 10)}
			if f[3] != wantRow[0] || f[4] != wantRow[1] || f[5] != wantRow[2] {
				t.Errorf("%s: partition %d: CURRENT-OFFSET LOG-END-OFFSET LAG = %v, want %v", when, p, f[3:6], wantRow)
			}
		}
		if rows != len(ends) {
			t.Errorf("%s: --describe showed %d rows for %s, want %d:\n%s", when, rows, topic, len(ends), out)
		}
	}
	describe("describe", committed)

	// With one live member (franz-go, not committing): --members shows it with its client id and all
	// three partitions, --state shows the group Stable with one member.
	member := newClient(t, c, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.ClientID("cli-member"))
	for {
		dg, err := adm.DescribeGroups(ctx, group)
		if err == nil && dg[group].State == "Stable" && len(dg[group].Members) == 1 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("group %s never became Stable with one member: %v %+v", group, err, dg)
		}
		time.Sleep(100 * time.Millisecond)
	}
	members := harness.RunKafkaTool(t, v, harness.ToolConsumerGroups, "--bootstrap-server", bs, "--describe",
		"--group", group, "--members")
	memberRows := 0
	for _, line := range strings.Split(members, "\n") {
		// GROUP CONSUMER-ID HOST CLIENT-ID #PARTITIONS
		if f := strings.Fields(line); len(f) == 5 && f[0] == group {
			memberRows++
			if f[3] != "cli-member" || f[4] != "3" {
				t.Errorf("--members row %q: want client id cli-member with 3 partitions", line)
			}
		}
	}
	if memberRows != 1 {
		t.Errorf("--describe --members showed %d member rows, want 1:\n%s", memberRows, members)
	}
	state := harness.RunKafkaTool(t, v, harness.ToolConsumerGroups, "--bootstrap-server", bs, "--describe",
		"--group", group, "--state")
	stateOK := false
	for _, line := range strings.Split(state, "\n") {
		// GROUP COORDINATOR (ID) ASSIGNMENT-STRATEGY STATE #MEMBERS
		f := strings.Fields(line)
		if len(f) >= 5 && f[0] == group {
			stateOK = f[len(f)-2] == "Stable" && f[len(f)-1] == "1"
		}
	}
	if !stateOK {
		t.Errorf("--describe --state: want the group Stable with 1 member:\n%s", state)
	}
	member.Close() // leaves the group: offsets can be reset only while it is empty

	reset := harness.RunKafkaTool(t, v, harness.ToolConsumerGroups, "--bootstrap-server", bs, "--reset-offsets",
		"--group", group, "--topic", topic, "--to-earliest", "--execute")
	if !strings.Contains(reset, topic) {
		t.Errorf("--reset-offsets printed no row for %s:\n%s", topic, reset)
	}
	got, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("fetch offsets after reset: %v", err)
	}
	for p := range ends {
		if o, ok := got.Lookup(topic, int32(p)); !ok || o.Err != nil || o.At != 0 {
			t.Errorf("after --reset-offsets --to-earliest: partition %d committed %+v, want 0", p, o)
		}
	}
	describe("describe after reset", []int64{0, 0, 0})

	del := harness.RunKafkaTool(t, v, harness.ToolConsumerGroups, "--bootstrap-server", bs, "--delete",
		"--group", group)
	if !strings.Contains(del, "successful") {
		t.Errorf("--delete did not report success:\n%s", del)
	}
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatalf("list groups after delete: %v", err)
	}
	if _, ok := listed[group]; ok {
		t.Errorf("group %s still listed after --delete", group)
	}
	after, err := adm.FetchOffsets(ctx, group)
	if err == nil {
		after.Each(func(o kadm.OffsetResponse) {
			if o.Topic == topic && o.Err == nil && o.At >= 0 {
				t.Errorf("partition %d still has committed offset %d after --delete", o.Partition, o.At)
			}
		})
	}
	t.Logf("kafka-consumer-groups list/describe/reset/delete took %v", time.Since(start).Round(time.Millisecond))
}

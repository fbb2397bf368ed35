package integration

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stromhq/strom/integration/harness"
)

// TestKafkaTools drives every target with Apache Kafka's own command-line tools (the Java admin client,
// producer and consumer behind them): create and describe a topic, alter its config, produce lines
// with the console producer, list offsets, read the lines back with the console consumer.
func TestKafkaTools(t *testing.T) {
	for _, tg := range clusters() {
		t.Run(tg.name, func(t *testing.T) {
			c := tg.start(t)
			v := tg.kafkaVersion
			bs := c.Bootstrap()
			topic := uniqueName("tools")

			harness.RunKafkaTool(t, v, harness.ToolTopics, "--bootstrap-server", bs, "--create", "--topic", topic,
				"--partitions", "2", "--replication-factor", "1")
			desc := harness.RunKafkaTool(t, v, harness.ToolTopics, "--bootstrap-server", bs, "--describe",
				"--topic", topic)
			if !strings.Contains(desc, "PartitionCount: 2") {
				t.Errorf("kafka-topics --describe: no 'PartitionCount: 2' in:\n%s", desc)
			}

			harness.RunKafkaTool(t, v, harness.ToolConfigs, "--bootstrap-server", bs, "--entity-type", "topics",
				"--entity-name", topic, "--alter", "--add-config", "retention.ms=1234567")
			cfgs := harness.RunKafkaTool(t, v, harness.ToolConfigs, "--bootstrap-server", bs, "--entity-type",
				"topics", "--entity-name", topic, "--describe")
			if !strings.Contains(cfgs, "retention.ms=1234567") {
				t.Errorf("kafka-configs --describe: no retention.ms=1234567 in:\n%s", cfgs)
			}

			lines := []string{"alpha", "beta", "gamma", "delta"}
			harness.RunKafkaToolInput(t, v, harness.ToolConsoleProducer, strings.Join(lines, "\n")+"\n",
				"--bootstrap-server", bs, "--topic", topic)

			offs := harness.RunKafkaTool(t, v, harness.ToolGetOffsets, "--bootstrap-server", bs, "--topic", topic)
			total := 0
			for _, l := range strings.Fields(offs) { // topic:partition:offset
				f := strings.Split(l, ":")
				if len(f) != 3 || f[0] != topic {
					t.Errorf("kafka-get-offsets: unexpected line %q", l)
					continue
				}
				n, err := strconv.Atoi(f[2])
				if err != nil {
					t.Errorf("kafka-get-offsets: line %q: %v", l, err)
				}
				total += n
			}
			if total != len(lines) {
				t.Errorf("kafka-get-offsets: end offsets sum to %d, want %d:\n%s", total, len(lines), offs)
			}

			out := harness.RunKafkaTool(t, v, harness.ToolConsoleConsumer, "--bootstrap-server", bs, "--topic", topic,
				"--from-beginning", "--max-messages", strconv.Itoa(len(lines)), "--timeout-ms", "60000")
			got := strings.Fields(out)
			slices.Sort(got)
			want := slices.Clone(lines)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("kafka-console-consumer read %q, want %q", got, want)
			}
		})
	}
}

// TestDumpLogKafkaSegment checks the harness's use of DumpLogSegments on a segment Kafka itself wrote:
// the baseline for reading Strom's segments with the same tool.
func TestDumpLogKafkaSegment(t *testing.T) {
	c := pool.Kafka(t, "single-"+harness.DefaultKafkaVersion)
	topic := uniqueName("dump")
	harness.RunKafkaTool(t, harness.DefaultKafkaVersion, harness.ToolTopics, "--bootstrap-server", c.Bootstrap(),
		"--create", "--topic", topic, "--partitions", "1", "--replication-factor", "1")
	harness.RunKafkaToolInput(t, harness.DefaultKafkaVersion, harness.ToolConsoleProducer, "one\ntwo\nthree\n",
		"--bootstrap-server", c.Bootstrap(), "--topic", topic)
	seg := filepath.Join(c.DataDir(0), topic+"-0", "00000000000000000000.log")
	if _, err := os.Stat(seg); err != nil {
		t.Fatalf("Kafka's segment: %v", err)
	}
	out := harness.RunKafkaTool(t, harness.DefaultKafkaVersion, harness.ToolDumpLog, "--files", seg,
		"--print-data-log")
	for _, v := range []string{"payload: one", "payload: two", "payload: three"} {
		if !strings.Contains(out, v) {
			t.Errorf("dump of %s lacks %q:\n%s", seg, v, out)
		}
	}
}

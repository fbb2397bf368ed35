package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stromhq/strom/integration/harness"
)

// TestGroupConfigsCLI runs Kafka 4.3.1's kafka-configs --entity-type groups (KIP-848 group-level
// configs) and kafka-client-metrics --list against Apache Kafka 4.3.1 and Strom and requires the same
// output from both: the alter, the dynamic and the full describe (every config with its default and
// synonyms), the listing of groups with configs, and Kafka's refusal of a value outside its limits.
func TestGroupConfigsCLI(t *testing.T) {
	outputs := map[string][]string{}
	for _, tg := range clusters() {
		if tg.kafkaVersion != harness.DefaultKafkaVersion {
			continue // Kafka 3.9 has no group configs
		}
		t.Run(tg.name, func(t *testing.T) {
			c := tg.start(t)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			group := uniqueName("gcfg")
			run := func(args ...string) string {
				t.Helper()
				return harness.RunKafkaTool(t, harness.DefaultKafkaVersion, harness.ToolConfigs,
					append([]string{"--bootstrap-server", c.Bootstrap()}, args...)...)
			}
			var out []string
			out = append(out, run("--alter", "--entity-type", "groups", "--entity-name", group,
				"--add-config", "consumer.session.timeout.ms=50000,consumer.heartbeat.interval.ms=6000,share.auto.offset.reset=earliest"))
			out = append(out, run("--describe", "--entity-type", "groups", "--entity-name", group))
			out = append(out, run("--describe", "--entity-type", "groups", "--entity-name", group, "--all"))
			all := run("--describe", "--entity-type", "groups")
			if !strings.Contains(all, "Dynamic configs for group "+group+" are:") {
				t.Fatalf("describe without a name does not list %s:\n%s", group, all)
			}
			res, err := harness.KafkaTool(ctx, harness.DefaultKafkaVersion, harness.ToolConfigs, nil, "--bootstrap-server", c.Bootstrap(),
				"--alter", "--entity-type", "groups", "--entity-name", group, "--add-config", "consumer.session.timeout.ms=1000")
			if err == nil || !strings.Contains(res.Stdout+res.Stderr, "consumer.session.timeout.ms must be greater than or equal to group.consumer.min.session.timeout.ms") {
				t.Fatalf("session timeout below the limit: %v\n%s\n%s", err, res.Stdout, res.Stderr)
			}
			out = append(out, run("--alter", "--entity-type", "groups", "--entity-name", group,
				"--delete-config", "consumer.session.timeout.ms,consumer.heartbeat.interval.ms,share.auto.offset.reset"))
			out = append(out, run("--describe", "--entity-type", "groups", "--entity-name", group))
			metrics := harness.RunKafkaTool(t, harness.DefaultKafkaVersion, "org.apache.kafka.tools.ClientMetricsCommand",
				"--bootstrap-server", c.Bootstrap(), "--list")
			out = append(out, metrics)
			for i := range out {
				out[i] = strings.ReplaceAll(strings.TrimSpace(out[i]), group, "GROUP")
			}
			outputs[tg.name] = out
		})
	}
	k, s := outputs["kafka-"+harness.DefaultKafkaVersion], outputs["strom"]
	if k == nil || s == nil {
		return // a subtest failed and said why
	}
	for i := range k {
		if k[i] != s[i] {
			t.Errorf("step %d differs:\nkafka:\n%s\nstrom:\n%s", i, k[i], s[i])
		}
	}
}

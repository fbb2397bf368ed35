package integration

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/stromhq/strom/integration/harness"
)

// TestClientQuotasCLI runs kafka-configs --alter/--describe for client
// quotas (AlterClientQuotas, DescribeClientQuotas) against a fresh Apache
// Kafka 4.3.1 and a fresh Strom (fresh: default-entity quotas would throttle
// other tests on shared clusters) and requires the same output from both
// after every step: lines compared as sorted sets, since the tool prints
// entities in the broker's order. A rejected alteration must fail on both
// with the same broker error and message.
func TestClientQuotasCLI(t *testing.T) {
	v := harness.DefaultKafkaVersion
	clusters := map[string]harness.Cluster{"kafka": harness.StartKafka(t), "strom": harness.StartStrom(t)}
	steps := []struct {
		name string
		args []string
		list bool // compare the output
		fail bool // the tool must fail on both
	}{
		{"alice producer rate", []string{"--alter", "--add-config", "producer_byte_rate=1024", "--entity-type", "users", "--entity-name", "alice"}, false, false},
		{"default user with client", []string{"--alter", "--add-config", "consumer_byte_rate=2048,request_percentage=50.5",
			"--entity-type", "users", "--entity-default", "--entity-type", "clients", "--entity-name", "app"}, false, false},
		{"default client", []string{"--alter", "--add-config", "producer_byte_rate=4096", "--entity-type", "clients", "--entity-default"}, false, false},
		{"ip", []string{"--alter", "--add-config", "connection_creation_rate=10", "--entity-type", "ips", "--entity-name", "127.0.0.2"}, false, false},
		{"describe alice", []string{"--describe", "--entity-type", "users", "--entity-name", "alice"}, true, false},
		{"describe users", []string{"--describe", "--entity-type", "users"}, true, false},
		{"describe clients", []string{"--describe", "--entity-type", "clients"}, true, false},
		{"describe default client", []string{"--describe", "--entity-type", "clients", "--entity-default"}, true, false},
		{"describe user-clients", []string{"--describe", "--entity-type", "users", "--entity-default", "--entity-type", "clients", "--entity-name", "app"}, true, false},
		{"describe ips", []string{"--describe", "--entity-type", "ips"}, true, false},
		// kafka-configs refuses unknown keys itself (both fail alike);
		// the broker's INVALID_REQUEST for them is a broker unit test.
		{"unknown key", []string{"--alter", "--add-config", "bogus_rate=1", "--entity-type", "users", "--entity-name", "bob"}, false, true},
		{"fraction for a long", []string{"--alter", "--add-config", "producer_byte_rate=1.5", "--entity-type", "users", "--entity-name", "bob"}, false, true},
		{"negative long", []string{"--alter", "--add-config", "producer_byte_rate=-5", "--entity-type", "users", "--entity-name", "carol"}, false, true},
		{"negative double", []string{"--alter", "--add-config", "request_percentage=-5", "--entity-type", "users", "--entity-name", "carol"}, false, true},
		{"zero", []string{"--alter", "--add-config", "consumer_byte_rate=0", "--entity-type", "users", "--entity-name", "carol"}, false, true},
		{"fractional int", []string{"--alter", "--add-config", "connection_creation_rate=2.5", "--entity-type", "ips", "--entity-default"}, false, true},
		{"describe carol", []string{"--describe", "--entity-type", "users", "--entity-name", "carol"}, true, false},
		{"delete alice's", []string{"--alter", "--delete-config", "producer_byte_rate", "--entity-type", "users", "--entity-name", "alice"}, false, false},
		{"describe users after delete", []string{"--describe", "--entity-type", "users"}, true, false},
		{"describe bob", []string{"--describe", "--entity-type", "users", "--entity-name", "bob"}, true, false},
	}
	for _, st := range steps {
		outs := map[string][]string{}
		errs := map[string]string{}
		// Kafka's broker learns quotas from the metadata log shortly after
		// the controller commits them: a listing that differs is taken
		// again (at most three times) before it counts.
		for attempt := 0; attempt < 3; attempt++ {
			for name, c := range clusters {
				args := append([]string{"--bootstrap-server", c.Bootstrap()}, st.args...)
				res, err := harness.KafkaTool(context.Background(), v, harness.ToolConfigs, nil, args...)
				switch {
				case st.fail && err == nil:
					t.Fatalf("%s: %s accepted it:\n%s", st.name, name, res.Stdout)
				case st.fail:
					errs[name] = brokerError(res.Stdout + res.Stderr)
				case err != nil:
					t.Fatalf("%s: %s: %v", st.name, name, err)
				}
				outs[name] = quotaLines(res.Stdout)
			}
			if !st.list || slices.Equal(outs["kafka"], outs["strom"]) {
				break
			}
		}
		if st.list && !slices.Equal(outs["kafka"], outs["strom"]) {
			t.Fatalf("%s: outputs differ\nkafka:\n%s\nstrom:\n%s", st.name, strings.Join(outs["kafka"], "\n"), strings.Join(outs["strom"], "\n"))
		}
		if st.fail && errs["kafka"] != errs["strom"] {
			t.Fatalf("%s: errors differ\nkafka: %s\nstrom: %s", st.name, errs["kafka"], errs["strom"])
		}
		t.Logf("%s: %q %q", st.name, outs["strom"], errs["strom"])
	}
	// The steps compared equal; make sure they compared something.
	users := strings.Join(quotaLines(harness.RunKafkaTool(t, v, harness.ToolConfigs, "--bootstrap-server", clusters["strom"].Bootstrap(),
		"--describe", "--entity-type", "clients", "--entity-default")), "\n")
	if !strings.Contains(users, "producer_byte_rate=4096") {
		t.Fatalf("strom describe of the default client: %q", users)
	}
}

// quotaLines returns the tool's non-empty output lines, sorted.
func quotaLines(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	slices.Sort(lines)
	return lines
}

// brokerError extracts the Kafka exception the tool reports with its
// message (e.g. "org.apache.kafka.common.errors.InvalidRequestException:
// Quota consumer_byte_rate must be greater than 0"): the broker's error
// code and message.
func brokerError(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if i := strings.Index(l, "org.apache.kafka.common.errors."); i >= 0 {
			return strings.TrimSpace(l[i:])
		}
	}
	return "no kafka error in: " + out
}

package integration

import (
	"slices"
	"strings"
	"testing"

	"github.com/stromhq/strom/integration/harness"
)

// toolACLs is kafka-acls (Kafka 4.x main class).
const toolACLs harness.Tool = "org.apache.kafka.tools.AclCommand"

// TestACLsCLI runs kafka-acls --add, --list and --remove --force against
// Apache Kafka 4.3.1 with the StandardAuthorizer and against Strom with
// --authorizer, both with User:ANONYMOUS (the tool's and the brokers' own
// PLAINTEXT principal) as super user, and requires the same listings from
// both after every step (lines compared as sets: the tools print resources
// in the broker's iteration order).
func TestACLsCLI(t *testing.T) {
	v := harness.DefaultKafkaVersion
	kafka := harness.StartKafka(t,
		harness.BrokerConfig("authorizer.class.name", "org.apache.kafka.metadata.authorizer.StandardAuthorizer"),
		harness.BrokerConfig("super.users", "User:ANONYMOUS"))
	strom := harness.StartStrom(t, harness.StromArgs("--authorizer", "--super-users", "User:ANONYMOUS"))

	steps := []struct {
		name string
		args []string
		list bool // compare the tool's output (a listing)
	}{
		{"add read", []string{"--add", "--allow-principal", "User:alice", "--operation", "Read", "--topic", "t"}, false},
		{"add prefixed deny", []string{"--add", "--deny-principal", "User:bob", "--deny-host", "10.0.0.1", "--operation", "Write",
			"--topic", "pay", "--resource-pattern-type", "prefixed"}, false},
		{"add consumer", []string{"--add", "--allow-principal", "User:carol", "--consumer", "--topic", "orders", "--group", "g"}, false},
		{"add cluster", []string{"--add", "--allow-principal", "User:ops", "--operation", "Describe", "--cluster"}, false},
		{"add transactional", []string{"--add", "--allow-principal", "User:alice", "--producer", "--topic", "t", "--transactional-id", "tx"}, false},
		{"list all", []string{"--list"}, true},
		{"list topic t", []string{"--list", "--topic", "t"}, true},
		{"list by principal", []string{"--list", "--principal", "User:alice"}, true},
		{"list match payments", []string{"--list", "--topic", "payments", "--resource-pattern-type", "match"}, true},
		{"remove read", []string{"--remove", "--force", "--allow-principal", "User:alice", "--operation", "Read", "--topic", "t"}, false},
		{"remove group acls", []string{"--remove", "--force", "--group", "g"}, false},
		{"list after remove", []string{"--list"}, true},
	}
	for _, st := range steps {
		outs := map[string][]string{}
		for name, c := range map[string]harness.Cluster{"kafka": kafka, "strom": strom} {
			args := append([]string{"--bootstrap-server", c.Bootstrap()}, st.args...)
			outs[name] = aclLines(harness.RunKafkaTool(t, v, toolACLs, args...))
		}
		if st.list && !slices.Equal(outs["kafka"], outs["strom"]) {
			t.Fatalf("%s: listings differ\nkafka:\n%s\nstrom:\n%s", st.name, strings.Join(outs["kafka"], "\n"), strings.Join(outs["strom"], "\n"))
		}
		if st.list && len(outs["strom"]) == 0 && st.name != "list match payments" {
			t.Fatalf("%s: empty listing", st.name)
		}
	}
	// The last listing holds bob's deny, carol's topic ACLs, ops' cluster
	// ACL and alice's producer ACLs, but neither alice's READ nor group g.
	last := strings.Join(aclLines(harness.RunKafkaTool(t, v, toolACLs, "--bootstrap-server", strom.Bootstrap(), "--list")), "\n")
	for _, want := range []string{"principal=User:bob, host=10.0.0.1, operation=WRITE, permissionType=DENY",
		"resourceType=CLUSTER, name=kafka-cluster", "resourceType=TRANSACTIONAL_ID, name=tx"} {
		if !strings.Contains(last, want) {
			t.Fatalf("final listing lacks %q:\n%s", want, last)
		}
	}
	for _, gone := range []string{"principal=User:alice, host=*, operation=READ", "resourceType=GROUP"} {
		if strings.Contains(last, gone) {
			t.Fatalf("final listing still has %q:\n%s", gone, last)
		}
	}
}

// aclLines returns the non-blank lines of a kafka-acls output, trimmed and
// sorted.
func aclLines(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	slices.Sort(lines)
	return lines
}

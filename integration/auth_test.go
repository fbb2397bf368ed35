package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/integration/harness"
)

// TestSCRAMOverTLSRealClients holds Strom and Apache Kafka to the same
// expectations on a SASL_SSL listener with SCRAM-SHA-256: an admin
// created at start (--add-scram / kafka-storage --add-scram) creates user
// alice with Kafka's kafka-configs.sh (AlterUserScramCredentials, then
// --describe), alice produces and consumes with Kafka's console producer
// and consumer over TLS, and a wrong password is refused.
func TestSCRAMOverTLSRealClients(t *testing.T) {
	pki := newTestPKI(t)
	common := []harness.Option{harness.Listener("SASLSSL", "SASL_SSL"), harness.ScramUser("SCRAM-SHA-256", "admin", "admin-secret")}
	for _, target := range []saslTarget{
		{"strom", func(t *testing.T) *harness.LocalCluster {
			return harness.StartStrom(t, append(common, harness.StromArgs("--ssl-cert-file", pki.serverPEM, "--ssl-key-file", pki.serverPEM,
				"--sasl-enabled-mechanisms", "SCRAM-SHA-256"))...)
		}},
		{"kafka", func(t *testing.T) *harness.LocalCluster {
			return harness.StartKafka(t, append(common,
				harness.BrokerConfig("listener.name.saslssl.sasl.enabled.mechanisms", "SCRAM-SHA-256"),
				harness.BrokerConfig("listener.name.saslssl.scram-sha-256.sasl.jaas.config",
					"org.apache.kafka.common.security.scram.ScramLoginModule required;"),
				harness.BrokerConfig("listener.name.saslssl.ssl.keystore.type", "PEM"),
				harness.BrokerConfig("listener.name.saslssl.ssl.keystore.location", pki.serverPEM))...)
		}},
	} {
		t.Run(target.name, func(t *testing.T) {
			c := target.start(t)
			bootstrap := c.ListenerBootstrap("SASLSSL")
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			writeProps := func(t *testing.T, user, pass string) string {
				p := filepath.Join(t.TempDir(), user+".properties")
				if err := os.WriteFile(p, []byte(strings.Join([]string{"security.protocol=SASL_SSL", "sasl.mechanism=SCRAM-SHA-256",
					"ssl.truststore.type=PEM", "ssl.truststore.location=" + pki.caFile,
					`sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="` + user + `" password="` + pass + `";`,
				}, "\n")+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				return p
			}
			admin := writeProps(t, "admin", "admin-secret")
			harness.RunKafkaTool(t, harness.DefaultKafkaVersion, harness.ToolConfigs, "--bootstrap-server", bootstrap,
				"--command-config", admin, "--alter", "--add-config", "SCRAM-SHA-256=[iterations=8192,password=alice-secret]",
				"--entity-type", "users", "--entity-name", "alice")
			desc := harness.RunKafkaTool(t, harness.DefaultKafkaVersion, harness.ToolConfigs, "--bootstrap-server", bootstrap,
				"--command-config", admin, "--describe", "--entity-type", "users", "--entity-name", "alice")
			if !strings.Contains(desc, "SCRAM-SHA-256=iterations=8192") {
				t.Fatalf("kafka-configs --describe: %s", desc)
			}
			topic := uniqueName("auth")
			harness.RunKafkaTool(t, harness.DefaultKafkaVersion, harness.ToolTopics, "--bootstrap-server", bootstrap,
				"--command-config", admin, "--create", "--topic", topic, "--partitions", "1", "--replication-factor", "1")

			// alice produces and consumes with Kafka's console tools. (Debian's
			// kcat 1.7.1 / librdkafka 2.0.2 fails SCRAM against Kafka 4.3.1 as well
			// as Strom: its client-final nonce repeats the client nonce.)
			alice, wrong := writeProps(t, "alice", "alice-secret"), writeProps(t, "alice", "wrong")
			consoleRoundTrip(ctx, t, bootstrap, topic, alice)
			// strom bench, both load generators, logged in from the same properties file.
			benchRoundTrip(ctx, t, bootstrap, admin)
			res, err := harness.KafkaTool(ctx, harness.DefaultKafkaVersion, harness.ToolTopics, nil, "--bootstrap-server", bootstrap,
				"--command-config", wrong, "--list")
			if err == nil || !strings.Contains(res.Stderr+res.Stdout, "Authentication failed") {
				t.Fatalf("kafka-topics with a wrong password: %v\n%s\n%s", err, res.Stdout, res.Stderr)
			}
		})
	}
}

// saslTarget is a cluster under test, Strom or Apache Kafka, started with
// a SASL listener configured like the other targets of the same test.
type saslTarget struct {
	name  string
	start func(t *testing.T) *harness.LocalCluster
}

// consoleRoundTrip has Kafka's console producer write one, two, three to
// topic through bootstrap, logged in with the client properties file
// props, and its console consumer read them back the same way.
func consoleRoundTrip(ctx context.Context, t *testing.T, bootstrap, topic, props string) {
	t.Helper()
	harness.RunKafkaToolInput(t, harness.DefaultKafkaVersion, harness.ToolConsoleProducer, "one\ntwo\nthree\n",
		"--bootstrap-server", bootstrap, "--topic", topic, "--command-config", props)
	res, err := harness.KafkaTool(ctx, harness.DefaultKafkaVersion, harness.ToolConsoleConsumer, nil, "--bootstrap-server", bootstrap,
		"--topic", topic, "--from-beginning", "--max-messages", "3", "--timeout-ms", "20000", "--command-config", props)
	if err != nil || strings.Join(strings.Fields(res.Stdout), ",") != "one,two,three" {
		t.Fatalf("console consumer with %s: %v\n%s\n%s", filepath.Base(props), err, res.Stdout, res.Stderr)
	}
}

// startStromInterBroker starts three Strom nodes whose brokers reach each
// other only on listener (of protocol), logging in with SCRAM-SHA-512 as
// user broker; args are the other flags, given before the inter-broker ones.
func startStromInterBroker(t *testing.T, listener, protocol string, args ...string) *harness.LocalCluster {
	return harness.StartStrom(t, harness.Nodes(3), harness.Listener(listener, protocol),
		harness.ScramUser("SCRAM-SHA-512", "broker", "broker-secret"),
		harness.StromArgs(append(args, "--inter-broker-listener-name", listener, "--inter-broker-sasl-mechanism", "SCRAM-SHA-512",
			"--inter-broker-sasl-username", "broker", "--inter-broker-sasl-password", "broker-secret")...))
}

// checkReplicated checks that every partition of topic has all three
// replicas in its ISR and that topic reads back n records without offset
// gaps: after acks=all writes, the followers fetched everything through the
// inter-broker listener.
func checkReplicated(ctx context.Context, t *testing.T, cl *kgo.Client, topic string, n int) {
	t.Helper()
	td, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil || td[topic].Err != nil {
		t.Fatalf("describe %s: %v %v", topic, err, td[topic].Err)
	}
	for _, p := range td[topic].Partitions.Sorted() {
		if len(p.ISR) != 3 {
			t.Fatalf("partition %d: ISR %v after acks=all writes", p.Partition, p.ISR)
		}
	}
	if got, gaps := countRecords(ctx, t, cl, topic); gaps || got != n {
		t.Fatalf("read back %d records (offset gaps %v)", got, gaps)
	}
}

// nodeLogs returns the log of each node of c, by node index.
func nodeLogs(t *testing.T, c *harness.LocalCluster) []string {
	t.Helper()
	logs := make([]string, c.Nodes())
	for i := range logs {
		b, err := os.ReadFile(c.LogPath(i))
		if err != nil {
			t.Fatal(err)
		}
		logs[i] = string(b)
	}
	return logs
}

// TestStromInterBrokerSASLSSL runs a three-node Strom cluster whose
// brokers reach each other only on a SASL_SSL listener (SCRAM-SHA-512,
// certificates from a test CA): acks=all writes to a replication-factor-3
// topic succeed only if every follower fetches through it, and every
// replica stays in the ISR.
func TestStromInterBrokerSASLSSL(t *testing.T) {
	pki := newTestPKI(t)
	c := startStromInterBroker(t, "SASLSSL", "SASL_SSL",
		"--ssl-cert-file", pki.serverPEM, "--ssl-key-file", pki.serverPEM, "--ssl-client-ca-file", pki.caFile)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl := newClient(t, c)
	topic := uniqueName("interbroker")
	createTopic(ctx, t, kadm.NewClient(cl), topic, 3, 3, nil)
	produce(ctx, t, cl, makeRecords(topic, 0, 300, time.Now()))
	checkReplicated(ctx, t, cl, topic, 300)
	for i, log := range nodeLogs(t, c) {
		if strings.Contains(log, "failed authentication") {
			t.Fatalf("node %d logged a failed authentication:\n%s", i, c.TailLogs(20))
		}
	}
}

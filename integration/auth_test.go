package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

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
	for _, target := range []struct {
		name  string
		start func(t *testing.T) *harness.LocalCluster
	}{
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
			harness.RunKafkaToolInput(t, harness.DefaultKafkaVersion, harness.ToolConsoleProducer, "one\ntwo\nthree\n",
				"--bootstrap-server", bootstrap, "--topic", topic, "--command-config", alice)
			res, err := harness.KafkaTool(ctx, harness.DefaultKafkaVersion, harness.ToolConsoleConsumer, nil, "--bootstrap-server", bootstrap,
				"--topic", topic, "--from-beginning", "--max-messages", "3", "--timeout-ms", "20000", "--command-config", alice)
			if err != nil || strings.Join(strings.Fields(res.Stdout), ",") != "one,two,three" {
				t.Fatalf("console consumer as alice: %v\n%s", err, res.Stdout)
			}
			res, err = harness.KafkaTool(ctx, harness.DefaultKafkaVersion, harness.ToolTopics, nil, "--bootstrap-server", bootstrap,
				"--command-config", wrong, "--list")
			if err == nil || !strings.Contains(res.Stderr+res.Stdout, "Authentication failed") {
				t.Fatalf("kafka-topics with a wrong password: %v\n%s\n%s", err, res.Stdout, res.Stderr)
			}
		})
	}
}

// TestStromInterBrokerSASLSSL runs a three-node Strom cluster whose
// brokers reach each other only on a SASL_SSL listener (SCRAM-SHA-512,
// certificates from a test CA): acks=all writes to a replication-factor-3
// topic succeed only if every follower fetches through it, and every
// replica stays in the ISR.
func TestStromInterBrokerSASLSSL(t *testing.T) {
	pki := newTestPKI(t)
	c := harness.StartStrom(t, harness.Nodes(3), harness.Listener("SASLSSL", "SASL_SSL"),
		harness.ScramUser("SCRAM-SHA-512", "broker", "broker-secret"),
		harness.StromArgs("--ssl-cert-file", pki.serverPEM, "--ssl-key-file", pki.serverPEM, "--ssl-client-ca-file", pki.caFile,
			"--inter-broker-listener-name", "SASLSSL", "--inter-broker-sasl-mechanism", "SCRAM-SHA-512",
			"--inter-broker-sasl-username", "broker", "--inter-broker-sasl-password", "broker-secret"))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl := newClient(t, c)
	adm := kadm.NewClient(cl)
	topic := uniqueName("interbroker")
	createTopic(ctx, t, adm, topic, 3, 3, nil)
	produce(ctx, t, cl, makeRecords(topic, 0, 300, time.Now()))
	td, err := adm.ListTopics(ctx, topic)
	if err != nil || td[topic].Err != nil {
		t.Fatalf("describe %s: %v %v", topic, err, td[topic].Err)
	}
	for _, p := range td[topic].Partitions.Sorted() {
		if len(p.ISR) != 3 {
			t.Fatalf("partition %d: ISR %v after acks=all writes", p.Partition, p.ISR)
		}
	}
	if n, gaps := countRecords(ctx, t, cl, topic); gaps || n != 300 {
		t.Fatalf("read back %d records (offset gaps %v)", n, gaps)
	}
	for i := 0; i < c.Nodes(); i++ {
		log, err := os.ReadFile(c.LogPath(i))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(log), "failed authentication") {
			t.Fatalf("node %d logged a failed authentication:\n%s", i, c.TailLogs(20))
		}
	}
}

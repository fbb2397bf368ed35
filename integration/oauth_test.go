package integration

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stromhq/strom/integration/harness"
)

// TestOAuthBearerUnsecuredRealClients holds Strom and Apache Kafka 4.3.1
// to the same expectations on a SASL_PLAINTEXT listener serving
// OAUTHBEARER with Kafka's default (unsecured) token validator requiring
// the scope "kafka": Kafka's console producer and consumer, logged in with
// the stock OAuthBearerLoginModule and unsecuredLoginStringClaim_sub,
// produce and consume; a token without a sub claim and a token without
// the scope are refused, and the error the Java client reports (the
// broker's RFC 7628 JSON status) is the same from both brokers.
func TestOAuthBearerUnsecuredRealClients(t *testing.T) {
	const jaas = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required"
	common := []harness.Option{harness.Listener("OAUTH", "SASL_PLAINTEXT")}
	var mu sync.Mutex
	refusals := map[string]map[string]string{} // target -> case -> JSON status
	for _, target := range []struct {
		name  string
		start func(t *testing.T) *harness.LocalCluster
	}{
		{"strom", func(t *testing.T) *harness.LocalCluster {
			return harness.StartStrom(t, append(common, harness.StromArgs("--sasl-enabled-mechanisms", "OAUTHBEARER",
				"--sasl-oauthbearer-unsecured-required-scope", "kafka"))...)
		}},
		{"kafka", func(t *testing.T) *harness.LocalCluster {
			return harness.StartKafka(t, append(common,
				harness.BrokerConfig("listener.name.oauth.sasl.enabled.mechanisms", "OAUTHBEARER"),
				harness.BrokerConfig("listener.name.oauth.oauthbearer.sasl.jaas.config",
					jaas+` unsecuredLoginStringClaim_sub="broker" unsecuredValidatorRequiredScope="kafka";`))...)
		}},
	} {
		t.Run(target.name, func(t *testing.T) {
			c := target.start(t)
			bootstrap := c.ListenerBootstrap("OAUTH")
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			writeProps := func(t *testing.T, name, options string) string {
				p := filepath.Join(t.TempDir(), name+".properties")
				if err := os.WriteFile(p, []byte(strings.Join([]string{"security.protocol=SASL_PLAINTEXT", "sasl.mechanism=OAUTHBEARER",
					"sasl.jaas.config=" + jaas + " " + options + ";",
				}, "\n")+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				return p
			}
			topic := uniqueName("oauth")
			harness.RunKafkaTool(t, harness.DefaultKafkaVersion, harness.ToolTopics, "--bootstrap-server", c.Bootstrap(),
				"--create", "--topic", topic, "--partitions", "1", "--replication-factor", "1")

			alice := writeProps(t, "alice", `unsecuredLoginStringClaim_sub="alice" unsecuredLoginListClaim_scope=",kafka,other"`)
			harness.RunKafkaToolInput(t, harness.DefaultKafkaVersion, harness.ToolConsoleProducer, "one\ntwo\nthree\n",
				"--bootstrap-server", bootstrap, "--topic", topic, "--command-config", alice)
			res, err := harness.KafkaTool(ctx, harness.DefaultKafkaVersion, harness.ToolConsoleConsumer, nil, "--bootstrap-server", bootstrap,
				"--topic", topic, "--from-beginning", "--max-messages", "3", "--timeout-ms", "20000", "--command-config", alice)
			if err != nil || strings.Join(strings.Fields(res.Stdout), ",") != "one,two,three" {
				t.Fatalf("console consumer as alice: %v\n%s\n%s", err, res.Stdout, res.Stderr)
			}

			got := map[string]string{}
			for name, options := range map[string]string{
				"no sub":   `unsecuredLoginPrincipalClaimName="user" unsecuredLoginStringClaim_user="alice" unsecuredLoginListClaim_scope=",kafka"`,
				"no scope": `unsecuredLoginStringClaim_sub="alice"`,
			} {
				props := writeProps(t, strings.ReplaceAll(name, " ", "-"), options)
				res, err := harness.KafkaTool(ctx, harness.DefaultKafkaVersion, harness.ToolTopics, nil, "--bootstrap-server", bootstrap,
					"--command-config", props, "--list")
				status := jsonStatusRE.FindString(res.Stderr + res.Stdout)
				if err == nil || status == "" {
					t.Fatalf("kafka-topics with a token with %s: %v, no JSON status in\n%s\n%s", name, err, res.Stdout, res.Stderr)
				}
				got[name] = status
			}
			mu.Lock()
			refusals[target.name] = got
			mu.Unlock()
		})
	}
	want := map[string]string{"no sub": `{"status":"invalid_token"}`, "no scope": `{"status":"insufficient_scope", "scope":"[kafka]"}`}
	for target, got := range refusals {
		for k, w := range want {
			if got[k] != w {
				t.Errorf("%s, token with %s: refused with %q, want %q", target, k, got[k], w)
			}
		}
	}
	if len(refusals) == 2 && (refusals["strom"]["no sub"] != refusals["kafka"]["no sub"] || refusals["strom"]["no scope"] != refusals["kafka"]["no scope"]) {
		t.Errorf("Strom and Kafka refuse differently: %v", refusals)
	}
}

// jsonStatusRE finds an RFC 7628 JSON status in a client's error output.
var jsonStatusRE = regexp.MustCompile(`\{"status":"[a-z_]+"(, "scope":"[^"]*")?\}`)

package integration

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

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
	var mu sync.Mutex
	refusals := map[string]map[string]string{} // target -> case -> JSON status
	for _, target := range oauthTargets(0) {
		t.Run(target.name, func(t *testing.T) {
			c := target.start(t)
			bootstrap := c.ListenerBootstrap("OAUTH")
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			writeProps := func(t *testing.T, name, options string) string { return oauthProps(t, name, options) }
			topic := uniqueName("oauth")
			harness.RunKafkaTool(t, harness.DefaultKafkaVersion, harness.ToolTopics, "--bootstrap-server", c.Bootstrap(),
				"--create", "--topic", topic, "--partitions", "1", "--replication-factor", "1")

			alice := writeProps(t, "alice", `unsecuredLoginStringClaim_sub="alice" unsecuredLoginListClaim_scope=",kafka,other"`)
			consoleRoundTrip(ctx, t, bootstrap, topic, alice)

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

// oauthJAAS is the stock login module of Kafka's OAUTHBEARER clients.
const oauthJAAS = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required"

// oauthTargets returns Strom and Kafka 4.3.1 configured alike: a
// SASL_PLAINTEXT listener OAUTH serving OAUTHBEARER through the unsecured
// validator requiring the scope kafka, with connections.max.reauth.ms =
// reauthMS.
func oauthTargets(reauthMS int) []saslTarget {
	reauth := strconv.Itoa(reauthMS)
	common := []harness.Option{harness.Listener("OAUTH", "SASL_PLAINTEXT")}
	return []saslTarget{
		{"strom", func(t *testing.T) *harness.LocalCluster {
			return harness.StartStrom(t, append(common, harness.StromArgs("--sasl-enabled-mechanisms", "OAUTHBEARER",
				"--sasl-oauthbearer-unsecured-required-scope", "kafka", "--connections-max-reauth-ms", reauth, "--log-level", "debug"))...)
		}},
		{"kafka", func(t *testing.T) *harness.LocalCluster {
			return harness.StartKafka(t, append(common,
				harness.BrokerConfig("listener.name.oauth.sasl.enabled.mechanisms", "OAUTHBEARER"),
				harness.BrokerConfig("connections.max.reauth.ms", reauth),
				harness.BrokerConfig("listener.name.oauth.oauthbearer.sasl.jaas.config",
					oauthJAAS+` unsecuredLoginStringClaim_sub="broker" unsecuredValidatorRequiredScope="kafka";`))...)
		}},
	}
}

// oauthProps writes a client properties file logging in with the stock
// login module and options.
func oauthProps(t *testing.T, name, options string, extra ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name+".properties")
	lines := append([]string{"security.protocol=SASL_PLAINTEXT", "sasl.mechanism=OAUTHBEARER",
		"sasl.jaas.config=" + oauthJAAS + " " + options + ";"}, extra...)
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestOAuthBearerReauthJavaClient: with connections.max.reauth.ms = 5 s,
// Kafka's console consumer (the Java client, which re-authenticates at
// 85-95% of the session lifetime) keeps consuming across several
// re-authentications, on Strom as on Kafka. On Strom the log must show
// re-authentications and no connection closed for an expired session.
func TestOAuthBearerReauthJavaClient(t *testing.T) {
	for _, target := range oauthTargets(5000) {
		t.Run(target.name, func(t *testing.T) {
			c := target.start(t)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			topic := uniqueName("oauth-reauth")
			harness.RunKafkaTool(t, harness.DefaultKafkaVersion, harness.ToolTopics, "--bootstrap-server", c.Bootstrap(),
				"--create", "--topic", topic, "--partitions", "1", "--replication-factor", "1")
			alice := oauthProps(t, "alice", `unsecuredLoginStringClaim_sub="alice" unsecuredLoginListClaim_scope=",kafka"`)
			type result struct {
				res harness.ToolResult
				err error
			}
			done := make(chan result, 1)
			go func() {
				res, err := harness.KafkaTool(ctx, harness.DefaultKafkaVersion, harness.ToolConsoleConsumer, nil,
					"--bootstrap-server", c.ListenerBootstrap("OAUTH"), "--topic", topic, "--from-beginning", "--max-messages", "6",
					"--timeout-ms", "60000", "--command-config", alice, "--consumer-property", "fetch.max.wait.ms=100")
				done <- result{res, err}
			}()
			cl := newClient(t, c)
			produce(ctx, t, cl, makeRecords(topic, 0, 3, time.Now()))
			// Three session lifetimes pass while the consumer polls.
			time.Sleep(15 * time.Second)
			produce(ctx, t, cl, makeRecords(topic, 3, 3, time.Now()))
			r := <-done
			if r.err != nil || len(recordValueRE.FindAllString(r.res.Stdout, -1)) != 6 {
				t.Fatalf("console consumer: %v\n%s\n%s", r.err, r.res.Stdout, r.res.Stderr)
			}
			if target.name != "strom" {
				return
			}
			log, err := os.ReadFile(c.LogPath(0))
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(string(log), "reauthentication=true"); n < 2 {
				t.Fatalf("%d re-authentications logged:\n%s", n, c.TailLogs(40))
			}
			if strings.Contains(string(log), "SASL session expired") {
				t.Fatalf("a connection was closed for an expired session:\n%s", c.TailLogs(40))
			}
		})
	}
}

// recordValueRE matches the values makeRecords writes, one a line.
var recordValueRE = regexp.MustCompile(`(?m)^v-\d+$`)

// jsonStatusRE finds an RFC 7628 JSON status in a client's error output.
var jsonStatusRE = regexp.MustCompile(`\{"status":"[a-z_]+"(, "scope":"[^"]*")?\}`)

// TestStromInterBrokerReauth runs three Strom nodes whose brokers reach
// each other only on a SASL_PLAINTEXT listener (SCRAM-SHA-512) with
// connections.max.reauth.ms = 2000: the replica fetchers re-authenticate
// in place, so acks=all writes keep succeeding with the full ISR over
// several session lifetimes and no connection is closed for an expired
// session.
func TestStromInterBrokerReauth(t *testing.T) {
	c := startStromInterBroker(t, "SASLPLAIN", "SASL_PLAINTEXT",
		"--sasl-enabled-mechanisms", "SCRAM-SHA-512", "--connections-max-reauth-ms", "2000", "--log-level", "debug")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl := newClient(t, c)
	topic := uniqueName("interbroker-reauth")
	createTopic(ctx, t, kadm.NewClient(cl), topic, 3, 3, nil)
	// Five rounds of acks=all writes a little more than a session lifetime
	// apart.
	for round := range 5 {
		produce(ctx, t, cl, makeRecords(topic, round*100, 100, time.Now()))
		time.Sleep(2200 * time.Millisecond)
	}
	checkReplicated(ctx, t, cl, topic, 500)
	reauths := 0
	for i, log := range nodeLogs(t, c) {
		if strings.Contains(log, "SASL session expired") || strings.Contains(log, "failed authentication") {
			t.Fatalf("node %d closed a connection for an expired session or a failed login:\n%s", i, c.TailLogs(30))
		}
		reauths += strings.Count(log, "reauthentication=true")
	}
	if reauths < 3 {
		t.Fatalf("%d re-authentications logged:\n%s", reauths, c.TailLogs(30))
	}
}

package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/integration/harness"
)

// toolDelegationTokens is kafka-delegation-tokens.sh's main class (Kafka
// 3.5+), given as a class name so the harness runs it as it is.
const toolDelegationTokens = harness.Tool("org.apache.kafka.tools.DelegationTokenCommand")

// tokenRow is one row of kafka-delegation-tokens.sh's token table.
type tokenRow struct {
	id, hmac, owner, requester, renewers string
}

// parseTokenRows reads the rows below the TOKENID header of the tool's
// output (--create and --describe print the same table).
func parseTokenRows(out string) []tokenRow {
	var rows []tokenRow
	header := false
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) > 0 && f[0] == "TOKENID":
			header = true
		case header && len(f) >= 5:
			rows = append(rows, tokenRow{id: f[0], hmac: f[1], owner: f[2], requester: f[3], renewers: f[4]})
		}
	}
	return rows
}

// TestDelegationTokensCLI holds Strom and Apache Kafka to the same
// expectations with Kafka's own kafka-delegation-tokens.sh on a
// SASL_PLAINTEXT listener with SCRAM: admin creates a token with ops as
// renewer (--create), lists it (--describe), a Kafka console producer and
// consumer log in with the token (SCRAM tokenauth=true) and see admin's
// rights, a token-authenticated connection and the PLAINTEXT listener may
// not use the token APIs, ops renews it (--renew), admin expires it
// (--expire), after which logging in with it fails.
func TestDelegationTokensCLI(t *testing.T) {
	const secret = "strom-token-secret"
	common := []harness.Option{harness.Listener("SASL", "SASL_PLAINTEXT"),
		harness.ScramUser("SCRAM-SHA-256", "admin", "admin-secret"), harness.ScramUser("SCRAM-SHA-256", "ops", "ops-secret")}
	for _, target := range []struct {
		name  string
		start func(t *testing.T) *harness.LocalCluster
	}{
		{"strom", func(t *testing.T) *harness.LocalCluster {
			return harness.StartStrom(t, append(common, harness.StromArgs("--delegation-token-secret-key", secret,
				"--sasl-enabled-mechanisms", "SCRAM-SHA-256,SCRAM-SHA-512"))...)
		}},
		{"kafka", func(t *testing.T) *harness.LocalCluster {
			return harness.StartKafka(t, append(common,
				harness.BrokerConfig("delegation.token.secret.key", secret),
				harness.BrokerConfig("listener.name.sasl.sasl.enabled.mechanisms", "SCRAM-SHA-256,SCRAM-SHA-512"),
				harness.BrokerConfig("listener.name.sasl.scram-sha-256.sasl.jaas.config",
					"org.apache.kafka.common.security.scram.ScramLoginModule required;"),
				harness.BrokerConfig("listener.name.sasl.scram-sha-512.sasl.jaas.config",
					"org.apache.kafka.common.security.scram.ScramLoginModule required;"))...)
		}},
	} {
		t.Run(target.name, func(t *testing.T) {
			c := target.start(t)
			bootstrap := c.ListenerBootstrap("SASL")
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			writeProps := func(t *testing.T, name string, lines ...string) string {
				p := filepath.Join(t.TempDir(), name+".properties")
				if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				return p
			}
			scramProps := func(t *testing.T, mech, user, pass string, token bool) string {
				extra := ""
				if token {
					extra = ` tokenauth="true"`
				}
				return writeProps(t, user, "security.protocol=SASL_PLAINTEXT", "sasl.mechanism="+mech,
					`sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="`+user+
						`" password="`+pass+`"`+extra+";")
			}
			admin := scramProps(t, "SCRAM-SHA-256", "admin", "admin-secret", false)
			ops := scramProps(t, "SCRAM-SHA-256", "ops", "ops-secret", false)
			tokens := func(t *testing.T, props string, args ...string) (harness.ToolResult, error) {
				return harness.KafkaTool(ctx, harness.DefaultKafkaVersion, toolDelegationTokens, nil,
					append([]string{"--bootstrap-server", bootstrap, "--command-config", props}, args...)...)
			}
			mustTokens := func(t *testing.T, props string, args ...string) string {
				t.Helper()
				res, err := tokens(t, props, args...)
				if err != nil {
					t.Fatal(err)
				}
				return res.Stdout
			}

			// Both advertise the same versions of the four token APIs.
			av, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, newClient(t, c))
			if err != nil {
				t.Fatal(err)
			}
			want := map[int16][2]int16{38: {1, 3}, 39: {1, 2}, 40: {1, 2}, 41: {1, 3}}
			for _, k := range av.ApiKeys {
				if w, ok := want[k.ApiKey]; ok {
					if k.MinVersion != w[0] || k.MaxVersion != w[1] {
						t.Errorf("api key %d: versions %d-%d, want %d-%d", k.ApiKey, k.MinVersion, k.MaxVersion, w[0], w[1])
					}
					delete(want, k.ApiKey)
				}
			}
			if len(want) != 0 {
				t.Fatalf("api keys not advertised: %v", want)
			}

			out := mustTokens(t, admin, "--create", "--max-life-time-period", "-1", "--renewer-principal", "User:ops")
			rows := parseTokenRows(out)
			if len(rows) != 1 || rows[0].owner != "User:admin" || rows[0].requester != "User:admin" || rows[0].renewers != "[User:ops]" {
				t.Fatalf("--create: %q", out)
			}
			tok := rows[0]
			// Without --owner-principal the tool sends an empty owner list,
			// which Kafka answers with no token at all.
			if out = mustTokens(t, admin, "--describe"); len(parseTokenRows(out)) != 0 {
				t.Fatalf("--describe without owners: %q", out)
			}
			for _, props := range []string{admin, ops} {
				out = mustTokens(t, props, "--describe", "--owner-principal", "User:admin")
				if got := parseTokenRows(out); len(got) != 1 || got[0] != tok {
					t.Fatalf("--describe: %q, want %+v", out, tok)
				}
			}
			out = mustTokens(t, admin, "--describe", "--owner-principal", "User:ops")
			if got := parseTokenRows(out); len(got) != 1 || got[0].id != tok.id {
				t.Fatalf("--describe --owner-principal User:ops (a renewer): %q", out)
			}

			// Log in with the token (both mechanisms) and write and read as admin.
			topic := uniqueName("token")
			harness.RunKafkaTool(t, harness.DefaultKafkaVersion, harness.ToolTopics, "--bootstrap-server", bootstrap,
				"--command-config", admin, "--create", "--topic", topic, "--partitions", "1", "--replication-factor", "1")
			tok256 := scramProps(t, "SCRAM-SHA-256", tok.id, tok.hmac, true)
			tok512 := scramProps(t, "SCRAM-SHA-512", tok.id, tok.hmac, true)
			harness.RunKafkaToolInput(t, harness.DefaultKafkaVersion, harness.ToolConsoleProducer, "one\ntwo\n",
				"--bootstrap-server", bootstrap, "--topic", topic, "--command-config", tok256)
			res, err := harness.KafkaTool(ctx, harness.DefaultKafkaVersion, harness.ToolConsoleConsumer, nil, "--bootstrap-server", bootstrap,
				"--topic", topic, "--from-beginning", "--max-messages", "2", "--timeout-ms", "20000", "--command-config", tok512)
			if err != nil || strings.Join(strings.Fields(res.Stdout), ",") != "one,two" {
				t.Fatalf("console consumer with the token: %v\n%s", err, res.Stdout)
			}

			// Token APIs are refused on a token login and on PLAINTEXT.
			if res, err := tokens(t, tok256, "--describe"); err == nil || !strings.Contains(res.Stdout+res.Stderr, "not allowed") {
				t.Fatalf("--describe with a token login: %v\n%s\n%s", err, res.Stdout, res.Stderr)
			}
			plain := writeProps(t, "plain", "security.protocol=PLAINTEXT")
			res, err = harness.KafkaTool(ctx, harness.DefaultKafkaVersion, toolDelegationTokens, nil,
				"--bootstrap-server", c.Bootstrap(), "--command-config", plain, "--describe")
			if err == nil || !strings.Contains(res.Stdout+res.Stderr, "not allowed") {
				t.Fatalf("--describe over PLAINTEXT: %v\n%s\n%s", err, res.Stdout, res.Stderr)
			}

			// ops (a renewer) renews, admin expires; then the token is gone.
			out = mustTokens(t, ops, "--renew", "--hmac", tok.hmac, "--renew-time-period", "3600000")
			if !strings.Contains(out, "Completed renew operation") {
				t.Fatalf("--renew: %q", out)
			}
			out = mustTokens(t, admin, "--expire", "--hmac", tok.hmac, "--expiry-time-period", "-1")
			if !strings.Contains(out, "Completed expire operation") {
				t.Fatalf("--expire: %q", out)
			}
			out = mustTokens(t, admin, "--describe", "--owner-principal", "User:admin")
			if got := parseTokenRows(out); len(got) != 0 || !strings.Contains(out, "Total number of tokens : 0") {
				t.Fatalf("--describe after --expire: %q", out)
			}
			if res, err := tokens(t, ops, "--renew", "--hmac", tok.hmac, "--renew-time-period", "1000"); err == nil ||
				!strings.Contains(res.Stdout+res.Stderr, "DelegationTokenNotFoundException") {
				t.Fatalf("--renew after --expire: %v\n%s\n%s", err, res.Stdout, res.Stderr)
			}
			res, err = harness.KafkaTool(ctx, harness.DefaultKafkaVersion, harness.ToolTopics, nil, "--bootstrap-server", bootstrap,
				"--command-config", tok256, "--list")
			if err == nil || !strings.Contains(res.Stderr+res.Stdout, "Authentication failed") {
				t.Fatalf("kafka-topics with an expired token: %v\n%s\n%s", err, res.Stdout, res.Stderr)
			}
		})
	}
}

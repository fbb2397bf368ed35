package integration

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/stromhq/strom/integration/harness"
	"github.com/stromhq/strom/internal/testpki"
)

// testPKI is a throwaway CA with a server certificate for 127.0.0.1 and a client certificate, as PEM files.
type testPKI struct {
	caFile                string // CA certificate
	serverPEM             string // server: PKCS#8 key then certificate, Kafka's ssl.keystore.type=PEM file
	clientCert, clientKey string // client certificate and PKCS#8 key
	otherCA               string // a CA that signed nothing here, for the negative case
	dir                   string
	ca                    *testpki.CA
}

// newTestPKI writes the CA, server and client files into a temporary folder of t.
func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	ca := testpki.NewCA(t, "strom test CA")
	server := ca.Issue(t, pkix.Name{CommonName: "127.0.0.1"}, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, "127.0.0.1")
	client := ca.Issue(t, pkix.Name{CommonName: "strom-mirror"}, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, "strom-mirror")
	return &testPKI{
		caFile:     testpki.WriteFile(t, dir, "ca.pem", ca.CertPEM()),
		otherCA:    testpki.WriteFile(t, dir, "other-ca.pem", testpki.NewCA(t, "unrelated CA").CertPEM()),
		serverPEM:  testpki.WriteFile(t, dir, "server.pem", append(server.KeyPEM(t), server.CertPEM()...)),
		clientCert: testpki.WriteFile(t, dir, "client.pem", client.CertPEM()),
		clientKey:  testpki.WriteFile(t, dir, "client-key.pem", client.KeyPEM(t)),
		dir:        dir,
		ca:         ca,
	}
}

// TestMirrorSecurity runs `strom migrate` and `strom verify` through Apache Kafka listeners that need
// authentication: SASL_PLAINTEXT with SCRAM-SHA-512 and PLAIN users, SSL with a PEM keystore
// (ssl.keystore.type=PEM) generated here and client certificates required, and SASL_SSL with SCRAM-SHA-512. Each connection flag is used
// at least once (--X-sasl-*, --X-tls*, --X-config for both protocols), and wrong credentials, an unknown
// CA and a missing client certificate fail before anything is copied, naming the side.
func TestMirrorSecurity(t *testing.T) {
	pki := newTestPKI(t)
	const (
		scramUser, scramPass = "mirror-scram", "scram-secret"
		plainUser, plainPass = "mirror-plain", "plain-secret"
	)
	kafka := harness.StartKafka(t,
		harness.Listener("SASL", "SASL_PLAINTEXT"), harness.Listener("TLS", "SSL"), harness.Listener("SASLTLS", "SASL_SSL"),
		harness.ScramUser("SCRAM-SHA-512", scramUser, scramPass),
		harness.BrokerConfig("listener.name.sasl.sasl.enabled.mechanisms", "SCRAM-SHA-512,PLAIN"),
		harness.BrokerConfig("listener.name.sasl.scram-sha-512.sasl.jaas.config",
			"org.apache.kafka.common.security.scram.ScramLoginModule required;"),
		harness.BrokerConfig("listener.name.sasl.plain.sasl.jaas.config",
			`org.apache.kafka.common.security.plain.PlainLoginModule required user_`+plainUser+`="`+plainPass+`";`),
		harness.BrokerConfig("listener.name.tls.ssl.keystore.type", "PEM"),
		harness.BrokerConfig("listener.name.tls.ssl.keystore.location", pki.serverPEM),
		harness.BrokerConfig("listener.name.tls.ssl.truststore.type", "PEM"),
		harness.BrokerConfig("listener.name.tls.ssl.truststore.location", pki.caFile),
		harness.BrokerConfig("listener.name.tls.ssl.client.auth", "required"),
		// SASL over TLS: SCRAM-SHA-512 only, server certificate only.
		harness.BrokerConfig("listener.name.sasltls.sasl.enabled.mechanisms", "SCRAM-SHA-512"),
		harness.BrokerConfig("listener.name.sasltls.scram-sha-512.sasl.jaas.config",
			"org.apache.kafka.common.security.scram.ScramLoginModule required;"),
		harness.BrokerConfig("listener.name.sasltls.ssl.keystore.type", "PEM"),
		harness.BrokerConfig("listener.name.sasltls.ssl.keystore.location", pki.serverPEM),
	)
	sasl, tlsAddr, saslTLS := kafka.ListenerBootstrap("SASL"), kafka.ListenerBootstrap("TLS"), kafka.ListenerBootstrap("SASLTLS")
	bin := stromBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	prefix := uniqueName("sec")
	topic := prefix + ".t"
	cl := newClient(t, kafka)
	createTopic(ctx, t, kadm.NewClient(cl), topic, 2, 1, nil)
	produce(ctx, t, cl, makeRecords(topic, 0, 60, time.Now()))
	sel := regexpQuote(prefix) + `\..*`

	dir := t.TempDir()
	writeProps := func(name string, lines ...string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	scramProps := writeProps("scram.properties", "bootstrap.servers="+sasl, "security.protocol=SASL_PLAINTEXT",
		"sasl.mechanism=SCRAM-SHA-512",
		`sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="`+scramUser+`" password="`+scramPass+`";`)
	saslTLSProps := writeProps("sasl-ssl.properties", "bootstrap.servers="+saslTLS, "security.protocol=SASL_SSL",
		"sasl.mechanism=SCRAM-SHA-512", "ssl.truststore.location="+pki.caFile,
		`sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="`+scramUser+`" password="`+scramPass+`";`)
	tlsProps := writeProps("tls.properties", "bootstrap.servers="+tlsAddr, "security.protocol=SSL",
		"ssl.truststore.location="+pki.caFile, "ssl.keystore.location="+pki.clientCert, "ssl.key.location="+pki.clientKey)

	fromSCRAM := []string{"--from", sasl, "--from-sasl-mechanism", "SCRAM-SHA-512", "--from-sasl-user", scramUser, "--from-sasl-password", scramPass}
	fromPLAIN := []string{"--from", sasl, "--from-sasl-mechanism", "PLAIN", "--from-sasl-user", plainUser, "--from-sasl-password", plainPass}
	toTLS := []string{"--to", tlsAddr, "--to-tls", "--to-tls-ca", pki.caFile, "--to-tls-cert", pki.clientCert, "--to-tls-key", pki.clientKey}
	strom := func(args ...string) (string, error) {
		out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
		return string(out), err
	}
	join := func(parts ...[]string) []string {
		var out []string
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}

	tests := []struct {
		name      string
		migrate   []string // connection flags of the copy
		verify    []string // connection flags of the check
		mode, dst string
	}{
		{"SCRAM-SHA-512 flags to mTLS flags, at-least-once", join(fromSCRAM, toTLS), join(fromPLAIN, []string{"--to-config", tlsProps}), "at-least-once", "a."},
		{"SCRAM-SHA-512 properties to mTLS properties, exactly-once", []string{"--from-config", scramProps, "--to-config", tlsProps}, join(fromSCRAM, toTLS), "exactly-once", "b."},
		{"SASL_SSL flags to SASL_SSL properties, exactly-once", join([]string{"--from", saslTLS, "--from-tls-ca", pki.caFile,
			"--from-sasl-mechanism", "SCRAM-SHA-512", "--from-sasl-user", scramUser, "--from-sasl-password", scramPass}, []string{"--to-config", saslTLSProps}),
			[]string{"--from-config", saslTLSProps, "--to-config", saslTLSProps}, "exactly-once", "c."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"migrate", "--topics", sel, "--mode", tt.mode, "--rename", "prefix:" + tt.dst,
				"--name", uniqueName("sec"), "--log-level", "warn", "--json"}, tt.migrate...)
			if out, err := strom(args...); err != nil || !strings.Contains(out, `"records":60`) {
				t.Fatalf("migrate: %v\n%s", err, out)
			}
			args = append([]string{"verify", "--topics", sel, "--rename", "prefix:" + tt.dst}, tt.verify...)
			if out, err := strom(args...); err != nil || !strings.Contains(out, "verify ok: 2 partitions identical") {
				t.Fatalf("verify: %v\n%s", err, out)
			}
		})
	}

	// Refusals: each ends the command before anything is copied, naming the side and the cause.
	bad := []struct {
		name  string
		flags []string
		want  []string
	}{
		{"wrong SCRAM password", []string{"--from", sasl, "--from-sasl-mechanism", "SCRAM-SHA-512", "--from-sasl-user", scramUser,
			"--from-sasl-password", "wrong", "--to", kafka.Bootstrap()}, []string{"source cluster " + sasl, "SASL_AUTHENTICATION_FAILED"}},
		{"unknown PLAIN user", []string{"--from", kafka.Bootstrap(), "--to", sasl, "--to-sasl-mechanism", "PLAIN", "--to-sasl-user", "nobody",
			"--to-sasl-password", plainPass}, []string{"destination cluster " + sasl, "SASL_AUTHENTICATION_FAILED"}},
		{"server certificate from an unknown CA", join(fromSCRAM, []string{"--to", tlsAddr, "--to-tls-ca", pki.otherCA,
			"--to-tls-cert", pki.clientCert, "--to-tls-key", pki.clientKey}), []string{"destination cluster " + tlsAddr, "x509: certificate signed by unknown authority"}},
		// Kafka rejects the handshake with a TLS alert (bad_certificate from Java 17).
		{"no client certificate", join(fromSCRAM, []string{"--to", tlsAddr, "--to-tls-ca", pki.caFile}), []string{"destination cluster " + tlsAddr, "remote error: tls:"}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			name := uniqueName("sec-bad")
			args := append([]string{"migrate", "--topics", sel, "--rename", "prefix:" + name + ".", "--name", name}, tt.flags...)
			out, err := strom(args...)
			if err == nil {
				t.Fatalf("migrate succeeded:\n%s", out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if topics, err := kadm.NewClient(cl).ListTopics(ctx, name+"."+topic); err != nil || topics.Has(name+"."+topic) {
				t.Errorf("destination topic %s exists after a refused migrate (err %v)", name+"."+topic, err)
			}
		})
	}
}

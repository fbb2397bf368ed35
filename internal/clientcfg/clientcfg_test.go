package clientcfg

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestResolveConfigFile(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		given Config
		want  Config
		err   error
	}{
		{"plaintext", "bootstrap.servers=a:9092,b:9092\n", Config{},
			Config{Bootstrap: "a:9092,b:9092"}, nil},
		{"sasl_ssl scram", `# comment
bootstrap.servers = broker:9096
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="s3cr=t";
ssl.truststore.location=/ca.pem
`, Config{},
			Config{Bootstrap: "broker:9096", TLS: true, SASLMechanism: "SCRAM-SHA-512", User: "alice", Password: "s3cr=t", CAFile: "/ca.pem"}, nil},
		{"sasl_plaintext defaults to PLAIN", "bootstrap.servers=x:1\nsecurity.protocol=SASL_PLAINTEXT\n", Config{},
			Config{Bootstrap: "x:1", SASLMechanism: "PLAIN"}, nil},
		{"msk iam", "bootstrap.servers=b-1.msk:9098\nsecurity.protocol=SASL_SSL\nsasl.mechanism=AWS_MSK_IAM\n", Config{},
			Config{Bootstrap: "b-1.msk:9098", TLS: true, SASLMechanism: "AWS_MSK_IAM"}, nil},
		{"flags win", "bootstrap.servers=file:1\n", Config{Bootstrap: "flag:1"},
			Config{Bootstrap: "flag:1"}, nil},
		{"bad protocol", "security.protocol=KERBEROS\n", Config{}, Config{}, ErrBadConfig},
		{"no equals", "bootstrap.servers\n", Config{}, Config{}, ErrBadConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "client.properties")
			if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			c := tt.given
			c.Name, c.ConfigFile = "source", path
			got, err := c.Resolve()
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			tt.want.Name, tt.want.ConfigFile = "source", path
			if got != tt.want {
				t.Fatalf("resolved %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestKgoOptsErrors(t *testing.T) {
	tests := []struct {
		name string
		c    Config
		want string
	}{
		{"no bootstrap", Config{Name: "source"}, "source: no bootstrap servers"},
		{"unknown mechanism", Config{Name: "destination", Bootstrap: "x:1", SASLMechanism: "GSSAPI"}, "destination: SASL mechanism"},
		{"missing CA", Config{Name: "source", Bootstrap: "x:1", CAFile: "/nonexistent/ca.pem"}, "source: CA file"},
		{"negative retry timeout", Config{Name: "source", Bootstrap: "x:1", RetryTimeout: -time.Second}, "source: retry timeout -1s"},
	}
	for _, tt := range tests {
		if _, err := tt.c.KgoOpts(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
	for _, m := range []string{"", "PLAIN", "scram-sha-256", "SCRAM-SHA-512", "AWS_MSK_IAM"} {
		if _, err := (Config{Name: "s", Bootstrap: "x:1", SASLMechanism: m, TLS: true}).KgoOpts(); err != nil {
			t.Errorf("mechanism %q: %v", m, err)
		}
	}
}

func FuzzParseProperties(f *testing.F) {
	f.Add("bootstrap.servers=a:1\n# c\n! c\n\nsasl.jaas.config=x required username=\"u\" password=\"p\";\n")
	f.Add("=\n=x\nk=\n")
	f.Fuzz(func(t *testing.T, s string) {
		props, err := parseProperties("fuzz", strings.NewReader(s))
		if err != nil {
			return
		}
		for k, v := range props {
			if strings.TrimSpace(k) != k || strings.TrimSpace(v) != v {
				t.Fatalf("untrimmed %q=%q", k, v)
			}
		}
		_ = jaasField.FindAllStringSubmatch(props["sasl.jaas.config"], -1)
	})
}

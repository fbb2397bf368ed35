package replicate

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolveConfigFile(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		given ClientConfig
		want  ClientConfig
		err   error
	}{
		{"plaintext", "bootstrap.servers=a:9092,b:9092\n", ClientConfig{},
			ClientConfig{Bootstrap: "a:9092,b:9092"}, nil},
		{"sasl_ssl scram", `# comment
bootstrap.servers = broker:9096
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="s3cr=t";
ssl.truststore.location=/ca.pem
`, ClientConfig{},
			ClientConfig{Bootstrap: "broker:9096", TLS: true, SASLMechanism: "SCRAM-SHA-512", User: "alice", Password: "s3cr=t", CAFile: "/ca.pem"}, nil},
		{"sasl_plaintext defaults to PLAIN", "bootstrap.servers=x:1\nsecurity.protocol=SASL_PLAINTEXT\n", ClientConfig{},
			ClientConfig{Bootstrap: "x:1", SASLMechanism: "PLAIN"}, nil},
		{"msk iam", "bootstrap.servers=b-1.msk:9098\nsecurity.protocol=SASL_SSL\nsasl.mechanism=AWS_MSK_IAM\n", ClientConfig{},
			ClientConfig{Bootstrap: "b-1.msk:9098", TLS: true, SASLMechanism: "AWS_MSK_IAM"}, nil},
		{"flags win", "bootstrap.servers=file:1\n", ClientConfig{Bootstrap: "flag:1"},
			ClientConfig{Bootstrap: "flag:1"}, nil},
		{"bad protocol", "security.protocol=KERBEROS\n", ClientConfig{}, ClientConfig{}, ErrBadConfig},
		{"no equals", "bootstrap.servers\n", ClientConfig{}, ClientConfig{}, ErrBadConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "client.properties")
			if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			c := tt.given
			c.Name, c.ConfigFile = "source", path
			got, err := c.resolve()
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
		c    ClientConfig
		want string
	}{
		{"no bootstrap", ClientConfig{Name: "source"}, "source: no bootstrap servers"},
		{"unknown mechanism", ClientConfig{Name: "destination", Bootstrap: "x:1", SASLMechanism: "GSSAPI"}, "destination: SASL mechanism"},
		{"missing CA", ClientConfig{Name: "source", Bootstrap: "x:1", CAFile: "/nonexistent/ca.pem"}, "source: CA file"},
	}
	for _, tt := range tests {
		if _, err := tt.c.kgoOpts(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
	for _, m := range []string{"", "PLAIN", "scram-sha-256", "SCRAM-SHA-512", "AWS_MSK_IAM"} {
		if _, err := (ClientConfig{Name: "s", Bootstrap: "x:1", SASLMechanism: m, TLS: true}).kgoOpts(); err != nil {
			t.Errorf("mechanism %q: %v", m, err)
		}
	}
}

func TestSelector(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Topics, cfg.Exclude, cfg.Rename = `orders\..*|payments`, `orders\.tmp.*`, "prefix:dc1."
	sel, err := cfg.selector()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		topic string
		want  bool
	}{
		{"orders.eu", true}, {"payments", true}, {"payments2", false}, {"orders.tmp1", false},
		{"__consumer_offsets", false}, {"strom.mirror.x.offsets", false}, {"xorders.eu", false},
	}
	for _, tt := range tests {
		if got := sel.selects(tt.topic); got != tt.want {
			t.Errorf("selects(%q) = %v, want %v", tt.topic, got, tt.want)
		}
	}
	if got := sel.dest("payments"); got != "dc1.payments" {
		t.Errorf("dest = %q", got)
	}
	for _, bad := range []func(*Config){
		func(c *Config) { c.Topics = "" },
		func(c *Config) { c.Topics = "(" },
		func(c *Config) { c.Rename = "suffix:x" },
		func(c *Config) { c.Name = "a b" },
		func(c *Config) { c.Groups = "[" },
	} {
		c := DefaultConfig()
		c.Topics = "t"
		bad(&c)
		if _, err := c.selector(); !errors.Is(err, ErrBadConfig) {
			t.Errorf("config %+v: err %v, want ErrBadConfig", c, err)
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

// Package clientcfg holds how Strom's tools (strom mirror, migrate, verify and bench) connect to a
// Kafka-protocol cluster as a client: TLS, SASL (PLAIN, SCRAM, AWS_MSK_IAM) and Kafka client properties
// files, turned into franz-go options or, for tools that speak the protocol themselves, a dialer and a
// SASL mechanism.
package clientcfg

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/aws"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// ErrBadConfig reports unusable connection settings (flags, client properties).
var ErrBadConfig = errors.New("bad configuration")

// Config describes how to reach one cluster. The zero value plus Bootstrap is a plaintext connection.
// A ConfigFile (Kafka client properties) is read first; fields set here override it.
type Config struct {
	// Name labels the side ("source", "destination") in errors and logs.
	Name string
	// Bootstrap is a comma-separated host:port list (bootstrap.servers).
	Bootstrap string
	// TLS enables TLS; CAFile, CertFile and KeyFile are optional PEM files.
	TLS                       bool
	CAFile, CertFile, KeyFile string
	// SASLMechanism is "", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512" or "AWS_MSK_IAM".
	SASLMechanism string
	// User and Password are the SASL PLAIN/SCRAM credentials. AWS_MSK_IAM takes its credentials from
	// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN.
	User, Password string
	// ConfigFile is a Kafka client properties file (key=value; bootstrap.servers, security.protocol,
	// sasl.mechanism, sasl.jaas.config with username="..." password="...", ssl.truststore.location as a
	// PEM CA file, ssl.keystore.location/ssl.key.location as PEM cert/key).
	ConfigFile string
	// RetryTimeout bounds how long a client keeps reissuing a failed request (metadata, admin,
	// transaction and group requests; not produce or fetch) before the caller sees the error; 0 means
	// DefaultRetryTimeout. A cluster unreachable for longer surfaces as an error at that point.
	RetryTimeout time.Duration
}

// DefaultRetryTimeout is the RetryTimeout of a Config that sets none (franz-go's own default for
// most requests).
const DefaultRetryTimeout = 30 * time.Second

var jaasField = regexp.MustCompile(`(username|password)\s*=\s*"((?:[^"\\]|\\.)*)"`)

// Resolve returns c with ConfigFile's properties filled in under the explicit fields.
func (c Config) Resolve() (Config, error) {
	if c.ConfigFile == "" {
		return c, nil
	}
	props, err := readProperties(c.ConfigFile)
	if err != nil {
		return c, fmt.Errorf("%s config: %w", c.Name, err)
	}
	set := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	set(&c.Bootstrap, props["bootstrap.servers"])
	switch strings.ToUpper(props["security.protocol"]) {
	case "", "PLAINTEXT":
	case "SSL":
		c.TLS = true
	case "SASL_SSL":
		c.TLS = true
		set(&c.SASLMechanism, "PLAIN")
	case "SASL_PLAINTEXT":
		set(&c.SASLMechanism, "PLAIN")
	default:
		return c, fmt.Errorf("%s config %s: security.protocol %q: %w", c.Name, c.ConfigFile, props["security.protocol"], ErrBadConfig)
	}
	if m := props["sasl.mechanism"]; m != "" && (c.SASLMechanism == "" || c.SASLMechanism == "PLAIN") {
		c.SASLMechanism = m
	}
	for _, m := range jaasField.FindAllStringSubmatch(props["sasl.jaas.config"], -1) {
		if m[1] == "username" {
			set(&c.User, m[2])
		} else {
			set(&c.Password, m[2])
		}
	}
	set(&c.CAFile, props["ssl.truststore.location"])
	set(&c.CertFile, props["ssl.keystore.location"])
	set(&c.KeyFile, props["ssl.key.location"])
	return c, nil
}

// readProperties reads a Kafka client properties file.
func readProperties(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseProperties(path, f)
}

// parseProperties parses key=value lines (the subset of Java properties Kafka client configs use):
// blank lines and lines starting with # or ! are skipped, keys and values are trimmed, the first '='
// separates them. name labels errors.
func parseProperties(name string, r io.Reader) (map[string]string, error) {
	props := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s:%d: no '=' in %q: %w", name, n, line, ErrBadConfig)
		}
		props[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return props, nil
}

// KgoOpts returns the franz-go connection options for c: seed brokers, timeouts, TLS and SASL.
func (c Config) KgoOpts() ([]kgo.Opt, error) {
	c, err := c.Resolve()
	if err != nil {
		return nil, err
	}
	if c.Bootstrap == "" {
		return nil, fmt.Errorf("%s: no bootstrap servers: %w", c.Name, ErrBadConfig)
	}
	retry := c.RetryTimeout
	switch {
	case retry == 0:
		retry = DefaultRetryTimeout
	case retry < 0:
		// kgo takes 0 for "retry forever"; a negative value is a mistake, not that.
		return nil, fmt.Errorf("%s: retry timeout %v (want a positive duration): %w", c.Name, retry, ErrBadConfig)
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(strings.Split(c.Bootstrap, ",")...),
		kgo.DialTimeout(dialTimeout),
		// One value for every request key: kgo's default uses the group session timeout for
		// JoinGroup, SyncGroup and Heartbeat instead.
		kgo.RetryTimeout(retry),
	}
	dial, err := c.Dialer()
	if err != nil {
		return nil, err
	}
	if dial != nil {
		opts = append(opts, kgo.Dialer(dial))
	}
	mech, err := c.Mechanism()
	if err != nil {
		return nil, err
	}
	if mech != nil {
		opts = append(opts, kgo.SASL(mech))
	}
	return opts, nil
}

// dialTimeout bounds connecting to one broker.
const dialTimeout = 5 * time.Second

// Dialer returns the TLS dialer c asks for, or nil for plaintext. c must be resolved (Resolve) when it
// names a ConfigFile.
func (c Config) Dialer() (func(ctx context.Context, network, addr string) (net.Conn, error), error) {
	if !c.TLS && c.CAFile == "" && c.CertFile == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s: CA file: %w", c.Name, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: CA file %s holds no PEM certificate: %w", c.Name, c.CAFile, ErrBadConfig)
		}
		cfg.RootCAs = pool
	}
	if c.CertFile != "" || c.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s: client certificate: %w", c.Name, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return (&tls.Dialer{NetDialer: &net.Dialer{Timeout: dialTimeout}, Config: cfg}).DialContext, nil
}

// Mechanism returns the SASL mechanism c asks for, or nil for none. c must be resolved (Resolve) when
// it names a ConfigFile.
func (c Config) Mechanism() (sasl.Mechanism, error) {
	switch strings.ToUpper(c.SASLMechanism) {
	case "":
		return nil, nil
	case "PLAIN":
		return plain.Auth{User: c.User, Pass: c.Password}.AsMechanism(), nil
	case "SCRAM-SHA-256":
		return scram.Auth{User: c.User, Pass: c.Password}.AsSha256Mechanism(), nil
	case "SCRAM-SHA-512":
		return scram.Auth{User: c.User, Pass: c.Password}.AsSha512Mechanism(), nil
	case "AWS_MSK_IAM":
		return aws.ManagedStreamingIAM(func(context.Context) (aws.Auth, error) {
			a := aws.Auth{
				AccessKey:    os.Getenv("AWS_ACCESS_KEY_ID"),
				SecretKey:    os.Getenv("AWS_SECRET_ACCESS_KEY"),
				SessionToken: os.Getenv("AWS_SESSION_TOKEN"),
			}
			if a.AccessKey == "" || a.SecretKey == "" {
				return a, fmt.Errorf("%s: AWS_MSK_IAM needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: %w", c.Name, ErrBadConfig)
			}
			return a, nil
		}), nil
	}
	return nil, fmt.Errorf("%s: SASL mechanism %q (want PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, AWS_MSK_IAM): %w",
		c.Name, c.SASLMechanism, ErrBadConfig)
}

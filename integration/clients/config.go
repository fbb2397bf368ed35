package clients

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// config holds the knobs of one Run. Defaults live in defaultConfig only.
type config struct {
	bootstrap   string
	timeout     time.Duration // whole run, every step included
	topicPrefix string
	python      string // interpreter that sees Debian's python3-kafka / python3-confluent-kafka
	node        string
	java        string
	javac       string
	kcat        string
	kafkaLibs   string // folder of Apache Kafka jars (java client, CLI tools); "" = discover
	scriptsDir  string // this package's source folder holding python/, node/, java/
	skipAudit   bool
	// createTopic creates the topic for clients without an admin API; tests replace it.
	createTopic func(ctx context.Context, cfg *config, topic string, partitions int32) error
}

// Option changes how Run runs a client.
type Option func(*config)

func defaultConfig() config {
	return config{
		timeout:     3 * time.Minute,
		topicPrefix: "strom-matrix",
		python:      "/usr/bin/python3", // the python3 first on PATH here cannot import Debian's packages
		node:        "node",
		java:        "java",
		javac:       "javac",
		kcat:        "kcat",
		kafkaLibs:   os.Getenv("STROM_KAFKA_LIBS"),
		scriptsDir:  envOr("STROM_CLIENTS_DIR", sourceDir()),
		createTopic: fallbackCreateTopic,
	}
}

// WithTimeout bounds a whole Run (default 3 minutes).
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithTopicPrefix sets the prefix of the per-run topic name (default "strom-matrix").
func WithTopicPrefix(p string) Option { return func(c *config) { c.topicPrefix = p } }

// WithKafkaLibs points the java and kafka-cli runners at a folder of Apache Kafka jars (what the
// integration harness downloads). Default: $STROM_KAFKA_LIBS, else the newest complete
// $STROM_KAFKA_CACHE/kafka-*/libs (default cache ~/.cache/strom).
func WithKafkaLibs(dir string) Option { return func(c *config) { c.kafkaLibs = dir } }

// WithJava sets the java launcher for the java and kafka-cli runners (default java on PATH; the
// integration harness' harness.Java() picks the one Kafka runs with). javac is looked up beside it.
func WithJava(path string) Option {
	return func(c *config) {
		c.java = path
		if dir := filepath.Dir(path); dir != "." {
			c.javac = filepath.Join(dir, "javac")
		}
	}
}

// WithPython sets the Python interpreter for the Python runners (default /usr/bin/python3).
func WithPython(path string) Option { return func(c *config) { c.python = path } }

// WithScriptsDir sets the folder holding python/, node/ and java/ (default: this package's source folder,
// or $STROM_CLIENTS_DIR). Needed only when tests run from a binary built with -trimpath.
func WithScriptsDir(dir string) Option { return func(c *config) { c.scriptsDir = dir } }

// WithoutAudit turns off the franz-go read-back that checks codecs and producer ids in the stored batches.
// Meant for clusters franz-go cannot read; results are then the client's own claims.
func WithoutAudit() Option { return func(c *config) { c.skipAudit = true } }

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// sourceDir is the folder of this file at build time, where the per-language scenario scripts live.
func sourceDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return ""
	}
	return filepath.Dir(file)
}

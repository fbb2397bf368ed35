package harness

import (
	"fmt"
	"io"
	"time"
)

// DefaultKafkaVersion is the Apache Kafka release tests use unless they ask for another: the newest 4.x
// whose full set of artifacts (broker, tools, Connect, MirrorMaker) Maven Central serves. 4.4.0's
// connect-mirror is not served there.
const DefaultKafkaVersion = "4.3.1"

// Kafka39Version is the newest 3.9.x release, the last line with ZooKeeper-era tools and the oldest
// broker line the harness supports.
const Kafka39Version = "3.9.2"

// Option configures a cluster started by NewKafka, StartKafka, NewStrom or StartStrom. Options that only
// make sense for one kind are ignored by the other (documented on each).
type Option func(*config)

// config holds every knob; defaultConfig is the only place defaults live.
type config struct {
	nodes        int
	version      string // Kafka only
	heap         string // Kafka only: -Xmx
	brokerConfig map[string]string
	stromArgs    []string
	startTimeout time.Duration
	stopGrace    time.Duration
	logEcho      io.Writer
}

func defaultConfig() config {
	return config{
		nodes:        1,
		version:      DefaultKafkaVersion,
		heap:         "512m",
		brokerConfig: map[string]string{},
		// Two cores shared with other test binaries: a JVM that starts in 3 s idle can take 30 s here.
		startTimeout: 120 * time.Second,
		stopGrace:    15 * time.Second,
	}
}

func buildConfig(opts []Option) (config, error) {
	c := defaultConfig()
	for _, o := range opts {
		o(&c)
	}
	if c.nodes < 1 || c.nodes > 9 {
		return c, fmt.Errorf("%w: %d nodes (want 1..9)", ErrBadOption, c.nodes)
	}
	if c.startTimeout <= 0 {
		return c, fmt.Errorf("%w: start timeout %v", ErrBadOption, c.startTimeout)
	}
	return c, nil
}

// Nodes sets the number of nodes (default 1). Kafka nodes are all combined controller+broker, so 3 nodes
// form a 3-voter KRaft quorum.
func Nodes(n int) Option { return func(c *config) { c.nodes = n } }

// KafkaVersion picks the Apache Kafka release (default DefaultKafkaVersion). Kafka only.
func KafkaVersion(v string) Option { return func(c *config) { c.version = v } }

// Heap sets the broker JVM's maximum heap, in java's -Xmx syntax (default "512m"). Kafka only.
func Heap(size string) Option { return func(c *config) { c.heap = size } }

// BrokerConfig sets a server.properties entry on every node, overriding the harness default for that key.
// Kafka only.
func BrokerConfig(key, value string) Option {
	return func(c *config) { c.brokerConfig[key] = value }
}

// StromArgs appends flags to every `strom serve` command line. Strom only.
func StromArgs(args ...string) Option {
	return func(c *config) { c.stromArgs = append(c.stromArgs, args...) }
}

// StartTimeout bounds how long starting (or restarting) waits for the cluster to be ready (default 120 s).
func StartTimeout(d time.Duration) Option { return func(c *config) { c.startTimeout = d } }

// EchoLogs copies every node's output to w as well as to its log file (for debugging a test by hand).
func EchoLogs(w io.Writer) Option { return func(c *config) { c.logEcho = w } }

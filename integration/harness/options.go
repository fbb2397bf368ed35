package harness

import (
	"fmt"
	"io"
	"regexp"
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
	voters       int    // Strom only: 0 = every node
	netns        bool   // each node in a network namespace of its own (netLab)
	version      string // Kafka only
	heap         string // Kafka only: -Xmx
	jvmFlags     []string
	brokerConfig map[string]string
	listeners    []listener // Kafka only: client listeners beside PLAINTEXT
	scram        []string   // Kafka only: kafka-storage --add-scram credentials
	stromArgs    []string
	startTimeout time.Duration
	stopGrace    time.Duration
	logEcho      io.Writer
	// readyPoll is the period of the readiness checks (log line, Metadata); small values make the time
	// from process start to ready measurable at the cost of more polling.
	logPoll, metadataPoll time.Duration
}

func defaultConfig() config {
	return config{
		nodes:   1,
		version: DefaultKafkaVersion,
		heap:    "512m",
		// C1 only and the serial collector: on two busy cores a broker is ready in about half the time
		// (measured 7-13 s against 20 s with the default JIT and G1), and tests need correctness, not
		// peak throughput. Benchmarks pass KafkaJVMFlags() with no flags for the default JVM.
		jvmFlags:     []string{"-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"},
		brokerConfig: map[string]string{},
		// Two cores shared with other test binaries: a JVM that starts in 3 s idle can take 30 s here.
		startTimeout: 120 * time.Second,
		stopGrace:    15 * time.Second,
		logPoll:      100 * time.Millisecond,
		metadataPoll: 250 * time.Millisecond,
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
	if c.voters < 0 || c.voters > c.nodes {
		return c, fmt.Errorf("%w: %d voters of %d nodes", ErrBadOption, c.voters, c.nodes)
	}
	if c.logPoll <= 0 || c.metadataPoll <= 0 {
		return c, fmt.Errorf("%w: ready poll interval must be positive", ErrBadOption)
	}
	if c.startTimeout <= 0 {
		return c, fmt.Errorf("%w: start timeout %v", ErrBadOption, c.startTimeout)
	}
	seen := map[string]bool{"PLAINTEXT": true, "CONTROLLER": true}
	for _, l := range c.listeners {
		if !listenerName.MatchString(l.name) || seen[l.name] {
			return c, fmt.Errorf("%w: listener name %q (upper case, unique, not PLAINTEXT or CONTROLLER)", ErrBadOption, l.name)
		}
		seen[l.name] = true
		switch l.protocol {
		case "PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL":
		default:
			return c, fmt.Errorf("%w: listener %s security protocol %q", ErrBadOption, l.name, l.protocol)
		}
	}
	return c, nil
}

// Nodes sets the number of nodes (default 1). Kafka nodes are all combined controller+broker, so 3 nodes
// form a 3-voter KRaft quorum.
func Nodes(n int) Option { return func(c *config) { c.nodes = n } }

// Voters makes only the first n Strom nodes raft voters; the others start with --process-roles broker
// and join them as non-voters (default: every node votes). Strom only.
func Voters(n int) Option { return func(c *config) { c.voters = n } }

// NetNamespaces runs every node in a network namespace of its own, linked to every other node and to
// the test's namespace (addresses 10.213.K.i; port 9092 for clients, 9093 for raft or Kafka's
// controller listener), so a test can cut the network between nodes, or between the test and a node,
// with LocalCluster.Cut and restore it with Heal. It needs Linux, root and iproute2's ip; NewStrom and
// NewKafka fail with ErrUnsupported otherwise.
func NetNamespaces() Option { return func(c *config) { c.netns = true } }

// KafkaVersion picks the Apache Kafka release (default DefaultKafkaVersion). Kafka only.
func KafkaVersion(v string) Option { return func(c *config) { c.version = v } }

// Heap sets the broker JVM's maximum heap, in java's -Xmx syntax (default "512m"). Kafka only.
func Heap(size string) Option { return func(c *config) { c.heap = size } }

// KafkaJVMFlags replaces the broker JVM's tuning flags (default: -XX:TieredStopAtLevel=1
// -XX:+UseSerialGC, for fast starts); call it with none to run Kafka's JVM as configured by default, as
// a benchmark should. Kafka only.
func KafkaJVMFlags(flags ...string) Option { return func(c *config) { c.jvmFlags = flags } }

// BrokerConfig sets a server.properties entry on every node, overriding the harness default for that key.
// Kafka only.
func BrokerConfig(key, value string) Option {
	return func(c *config) { c.brokerConfig[key] = value }
}

// listener is an extra Kafka client listener: its name and security protocol.
type listener struct{ name, protocol string }

// listenerName matches a Kafka listener name the harness accepts (Kafka's own rule is looser; this keeps
// names usable as listener.name.<lower>.* config prefixes).
var listenerName = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)

// Listener adds a client listener NAME with security protocol (SASL_PLAINTEXT, SSL, SASL_SSL) on a free
// 127.0.0.1 port of every node, beside the PLAINTEXT listener the harness, inter-broker traffic and
// Bootstrap use. Configure it with BrokerConfig("listener.name.<name in lower case>.<key>", ...) on Kafka
// and StromArgs (--ssl-*, --sasl-enabled-mechanisms) on Strom; find its addresses with
// LocalCluster.ListenerBootstrap.
func Listener(name, protocol string) Option {
	return func(c *config) { c.listeners = append(c.listeners, listener{name: name, protocol: protocol}) }
}

// ScramUser creates a SCRAM credential (mechanism SCRAM-SHA-256 or SCRAM-SHA-512) before the first client
// connects: when Kafka's storage is formatted (kafka-storage format --add-scram), with `strom serve
// --add-scram` on Strom.
func ScramUser(mechanism, user, password string) Option {
	return func(c *config) {
		c.scram = append(c.scram, fmt.Sprintf("%s=[name=%s,password=%s]", mechanism, user, password))
	}
}

// StromArgs appends flags to every `strom serve` command line. Strom only.
func StromArgs(args ...string) Option {
	return func(c *config) { c.stromArgs = append(c.stromArgs, args...) }
}

// StartTimeout bounds how long starting (or restarting) waits for the cluster to be ready (default 120 s).
func StartTimeout(d time.Duration) Option { return func(c *config) { c.startTimeout = d } }

// EchoLogs copies every node's output to w as well as to its log file (for debugging a test by hand).
func EchoLogs(w io.Writer) Option { return func(c *config) { c.logEcho = w } }

// ReadyPoll sets how often the harness checks whether a starting node is ready (its log line, then
// Metadata); the defaults are 100 ms and 250 ms. bench/compare sets a few milliseconds to measure the
// time from process start to ready.
func ReadyPoll(d time.Duration) Option {
	return func(c *config) { c.logPoll, c.metadataPoll = d, d }
}

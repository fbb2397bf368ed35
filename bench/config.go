package bench

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/stromhq/strom/internal/clientcfg"
)

// Errors of this package; match with errors.Is.
var (
	// ErrBadConfig reports an invalid option (flag) value; the message names the flag and the value.
	ErrBadConfig = errors.New("bench: bad config")
	// ErrNothingToConsume reports a consume run against a topic that holds no records and no --records
	// or --duration bound that would make waiting for new ones meaningful.
	ErrNothingToConsume = errors.New("bench: topic holds no records to consume")
)

// Mode selects what Run measures.
type Mode string

// The modes of Run.
const (
	// ModeProduce writes records as fast as allowed and measures acknowledgement latency.
	ModeProduce Mode = "produce"
	// ModeConsume reads the topic from its start up to the end offsets seen when the run begins.
	ModeConsume Mode = "consume"
	// ModeE2E produces and consumes at once and measures the time from a record's intended send time,
	// carried in its value, to its arrival at a consumer.
	ModeE2E Mode = "e2e"
)

// The load generators of Config.Client.
const (
	// ClientFranzGo produces and consumes with franz-go, a full client, as an application would.
	ClientFranzGo = "franz-go"
	// ClientLean produces pre-encoded full batches, and consumes by walking fetched batches without
	// building records, with the fewest client-side costs (see lean.go and leanconsume.go), so that on a
	// machine the client and the cluster share, the cluster rather than the client sets the rate.
	// Produce at max rate, acks 1 or all, no compression; consume uncompressed topics; no e2e.
	ClientLean = "lean"
)

// e2eStampBytes is the prefix of an e2e record's value holding its intended send time (Unix nanoseconds,
// big endian). Record sizes below it cannot carry the stamp.
const e2eStampBytes = 8

// Config describes one run. Build it from DefaultConfig; Validate reports the first bad field.
type Config struct {
	// Brokers are the seed host:port addresses.
	Brokers []string
	// Topic is created with Partitions partitions, ReplicationFactor replicas (0: the cluster's
	// default) and TopicConfigs if missing; an existing topic is used as it is.
	Topic             string
	Partitions        int32
	ReplicationFactor int16
	TopicConfigs      map[string]string
	// RecordSize is the value size in bytes; records have no key and no headers.
	RecordSize int
	// Rate is the target in records per second over all producers; 0 means as fast as possible.
	Rate float64
	// Duration and Records bound the run; whichever is reached first ends it. At least one must be set.
	// In consume mode with Records 0 the run also ends at the end offsets seen at its start.
	Duration time.Duration
	Records  int64
	// Passes is how many times a consume run reads the topic from its start offsets to the end offsets
	// seen when it begins, each pass with new clients; 0 counts as 1. Rates are over all passes. A
	// consumer reads in well under a second what a producer wrote in several, and more passes give a
	// steadier figure on a shared machine. Consume mode only.
	Passes int
	// Acks is "0", "1" or "all". Idempotence is on exactly when Acks is "all" (Kafka requires acks=all
	// for it), as in the Java client's defaults.
	Acks string
	// Compression is none, gzip, snappy, lz4 or zstd.
	Compression string
	// Linger is how long a producer waits to fill a batch (franz-go's ProducerLinger; the Java client's
	// linger.ms). It sets a floor under produce and e2e latency at low rates.
	Linger time.Duration
	// Producers and Consumers are the numbers of independent clients (connections); partitions are split
	// among consumers round-robin.
	Producers, Consumers int
	// Client is the load generator: ClientFranzGo (the default) or ClientLean.
	Client string
	// Conn is how to connect: TLS, SASL, or a Kafka client properties file (ConfigFile). Brokers, when
	// set, win over the file's bootstrap.servers; Conn.Bootstrap is not used.
	Conn clientcfg.Config
	// DrainTimeout bounds how long e2e consumers keep reading after the producers stopped.
	DrainTimeout time.Duration
	// Progress receives a status line every ProgressInterval while the run goes; nil disables it.
	Progress         io.Writer
	ProgressInterval time.Duration
}

// DefaultConfig returns the defaults of every option; `strom bench` flags start from these.
func DefaultConfig() Config {
	return Config{
		Brokers:          []string{"127.0.0.1:9092"},
		Topic:            "strom-bench",
		Partitions:       8,
		RecordSize:       1024,
		Duration:         10 * time.Second,
		Acks:             "all",
		Compression:      "none",
		Linger:           10 * time.Millisecond, // franz-go's default
		Producers:        1,
		Consumers:        1,
		Passes:           1,
		Client:           ClientFranzGo,
		DrainTimeout:     10 * time.Second,
		ProgressInterval: time.Second,
	}
}

// Validate checks cfg for mode and returns an ErrBadConfig naming the first offending flag.
func (c Config) Validate(mode Mode) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadConfig, fmt.Sprintf(format, args...))
	}
	switch mode {
	case ModeProduce, ModeConsume, ModeE2E:
	default:
		return bad("mode %q is not produce, consume or e2e", mode)
	}
	if len(c.Brokers) == 0 {
		return bad("--brokers is empty (and --client-config names no bootstrap.servers)")
	}
	for _, b := range c.Brokers {
		if _, port, ok := strings.Cut(b, ":"); !ok || port == "" {
			return bad("--brokers %q is not HOST:PORT", b)
		}
	}
	switch {
	case c.Topic == "":
		return bad("--topic is empty")
	case c.Partitions < 1:
		return bad("--partitions %d must be at least 1", c.Partitions)
	case c.ReplicationFactor < 0:
		return bad("--replication-factor %d is negative", c.ReplicationFactor)
	case c.RecordSize < 0:
		return bad("--record-size %d is negative", c.RecordSize)
	case mode == ModeE2E && c.RecordSize < e2eStampBytes:
		return bad("--record-size %d: e2e needs at least %d bytes for the send timestamp", c.RecordSize, e2eStampBytes)
	case c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return bad("--rate %v must be a positive number or max", c.Rate)
	case c.Duration < 0:
		return bad("--duration %v is negative", c.Duration)
	case c.Records < 0:
		return bad("--records %d is negative", c.Records)
	case c.Passes < 0:
		return bad("--passes %d is negative", c.Passes)
	case c.Passes > 1 && mode != ModeConsume:
		return bad("--passes %d: only consume reads a topic more than once", c.Passes)
	case c.Duration == 0 && c.Records == 0 && mode != ModeConsume:
		return bad("set --duration or --records to bound the run")
	case c.Linger < 0:
		return bad("--linger %v is negative", c.Linger)
	case c.Producers < 1:
		return bad("--producers %d must be at least 1", c.Producers)
	case c.Consumers < 1:
		return bad("--consumers %d must be at least 1", c.Consumers)
	case c.DrainTimeout < 0:
		return bad("drain timeout %v is negative", c.DrainTimeout)
	case c.Progress != nil && c.ProgressInterval <= 0:
		return bad("progress interval %v must be positive", c.ProgressInterval)
	}
	acks, err := ParseAcks(c.Acks)
	if err != nil {
		return err
	}
	switch c.Client {
	case ClientFranzGo:
	case ClientLean:
		switch {
		case mode == ModeE2E:
			return bad("--client lean does not read record values, so it cannot time e2e latency; e2e needs --client franz-go")
		case mode == ModeConsume:
			// The produce settings below do not apply to a consumer.
		case c.Rate != 0:
			return bad("--client lean sends at max rate only; drop --rate or use --client franz-go")
		case acks == 0:
			return bad("--client lean counts acknowledgements; --acks 0 needs --client franz-go")
		case c.Compression != "none":
			return bad("--client lean sends uncompressed batches; --compression %s needs --client franz-go", c.Compression)
		}
	default:
		return bad("--client %q is not %s or %s", c.Client, ClientFranzGo, ClientLean)
	}
	if _, err := compressionCodec(c.Compression); err != nil {
		return err
	}
	return nil
}

// ParseRate parses --rate: "max" (or "0") for as fast as possible, else records per second.
func ParseRate(s string) (float64, error) {
	if strings.EqualFold(s, "max") {
		return 0, nil
	}
	r, err := strconv.ParseFloat(s, 64)
	if err != nil || r < 0 || math.IsNaN(r) || math.IsInf(r, 0) {
		return 0, fmt.Errorf("%w: --rate %q is not a positive number of records per second or max", ErrBadConfig, s)
	}
	return r, nil
}

// ParseAcks parses --acks ("0", "1", "all" or "-1") into Kafka's wire value.
func ParseAcks(s string) (int16, error) {
	switch s {
	case "0":
		return 0, nil
	case "1":
		return 1, nil
	case "all", "-1":
		return -1, nil
	}
	return 0, fmt.Errorf("%w: --acks %q is not 0, 1 or all", ErrBadConfig, s)
}

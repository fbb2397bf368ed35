package clients

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// cliDriver runs the scenario with Apache Kafka's command-line tools, started by main class with
// `java -cp 'libs/*'` (what bin/kafka-*.sh do): kafka-topics (TopicCommand), kafka-console-producer and
// -consumer, kafka-get-offsets (GetOffsetShell) and kafka-configs (ConfigCommand). One JVM per call.
//
// The console producer cannot pick a partition per line; it sends keyed records through the default
// partitioner, murmur2 of the key, which the scenario's keys are chosen for. It runs with --sync so a
// failed send fails the process instead of being logged and ignored.
type cliDriver struct {
	java      string
	libs      string
	bootstrap string
	// newFlags: the libs are Kafka 4.1 or later, where the producer's --producer-property/--property became
	// --command-property/--reader-property and the consumer's --property became --formatter-property.
	newFlags bool
	// producerClass: the console producer moved from core (kafka.tools, Scala) to the tools jar in 4.0.
	producerClass string
}

func newCLIDriver(_ context.Context, cfg *config) (driver, error) {
	libs, err := kafkaLibs(cfg)
	if err != nil {
		return nil, err
	}
	if _, err := exec.LookPath(cfg.java); err != nil {
		return nil, fmt.Errorf("%w: java not found: %v", ErrUnavailable, err)
	}
	v := libsVersion(libs)
	d := &cliDriver{java: cfg.java, libs: libs, bootstrap: cfg.bootstrap,
		newFlags: v != "" && compareVersions(v, "4.1") >= 0, producerClass: "org.apache.kafka.tools.ConsoleProducer"}
	if v != "" && compareVersions(v, "4.0") < 0 {
		d.producerClass = "kafka.tools.ConsoleProducer"
	}
	return d, nil
}

// libsVersion is the version of kafka-clients-VERSION.jar in libs, or "" when there is none.
func libsVersion(libs string) string {
	m, _ := filepath.Glob(filepath.Join(libs, "kafka-clients-*.jar"))
	for _, f := range m {
		v := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "kafka-clients-"), ".jar")
		if v != "" && v[0] >= '0' && v[0] <= '9' {
			return v
		}
	}
	return ""
}

func (d *cliDriver) Close() error { return nil }

// tool runs one Kafka CLI main class with --bootstrap-server prepended to args. TieredStopAtLevel=1 cuts
// JVM start-up, which dominates these short runs.
func (d *cliDriver) tool(ctx context.Context, stdin []byte, class string, args ...string) ([]byte, error) {
	full := append([]string{"-Xmx256m", "-XX:TieredStopAtLevel=1", "-cp", filepath.Join(d.libs, "*"), class,
		"--bootstrap-server", d.bootstrap}, args...)
	return runCmd(ctx, bytes.NewReader(stdin), nil, d.java, full...)
}

func (d *cliDriver) CreateTopic(ctx context.Context, topic string, partitions int32) error {
	_, err := d.tool(ctx, nil, "org.apache.kafka.tools.TopicCommand", "--create", "--topic", topic,
		"--partitions", strconv.Itoa(int(partitions)), "--replication-factor", "1")
	return err
}

var partitionCountRE = regexp.MustCompile(`PartitionCount:\s*(\d+)`)

func (d *cliDriver) PartitionCount(ctx context.Context, topic string) (int, error) {
	out, err := d.tool(ctx, nil, "org.apache.kafka.tools.TopicCommand", "--describe", "--topic", topic)
	if err != nil {
		return 0, err
	}
	m := partitionCountRE.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no PartitionCount in kafka-topics --describe output %q", shorten(string(out)))
	}
	return strconv.Atoi(string(m[1]))
}

// Produce feeds "h1:v1,h2:v2<TAB>key<TAB>value" lines (parse.headers and parse.key with the default
// separators) to the console producer.
func (d *cliDriver) Produce(ctx context.Context, topic, codec string, idempotent bool, recs []record) error {
	var in bytes.Buffer
	for _, r := range recs {
		hs := make([]string, 0, len(r.Headers))
		for _, h := range r.Headers {
			hs = append(hs, h.Key+":"+h.Value)
		}
		fmt.Fprintf(&in, "%s\t%s\t%s\n", strings.Join(hs, ","), r.Key, r.Value)
	}
	prodFlag, readFlag := "--producer-property", "--property"
	if d.newFlags {
		prodFlag, readFlag = "--command-property", "--reader-property"
	}
	args := []string{"--topic", topic, "--sync",
		prodFlag, "acks=all",
		// The console producer lingers 1 s per batch by default (its --timeout); with --sync that is 1 s
		// per line.
		prodFlag, "linger.ms=0",
		prodFlag, "enable.idempotence=" + strconv.FormatBool(idempotent),
		readFlag, "parse.key=true", readFlag, "parse.headers=true"}
	if codec != "none" {
		args = append(args, "--compression-codec", codec)
	}
	_, err := d.tool(ctx, in.Bytes(), d.producerClass, args...)
	return err
}

// getOffset runs kafka-get-offsets for one partition; it prints "TOPIC:PARTITION:OFFSET".
func (d *cliDriver) getOffset(ctx context.Context, topic string, partition int32, ts int64) (int64, error) {
	out, err := d.tool(ctx, nil, "org.apache.kafka.tools.GetOffsetShell", "--topic", topic,
		"--partitions", strconv.Itoa(int(partition)), "--time", strconv.FormatInt(ts, 10))
	if err != nil {
		return 0, err
	}
	prefix := fmt.Sprintf("%s:%d:", topic, partition)
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), prefix); ok {
			return strconv.ParseInt(rest, 10, 64)
		}
	}
	return 0, fmt.Errorf("no offset in kafka-get-offsets output %q", shorten(string(out)))
}

func (d *cliDriver) EndOffset(ctx context.Context, topic string, partition int32) (int64, error) {
	return d.getOffset(ctx, topic, partition, -1)
}

func (d *cliDriver) OffsetForTime(ctx context.Context, topic string, partition int32, ts int64) (int64, error) {
	return d.getOffset(ctx, topic, partition, ts)
}

// ReadPartition runs the console consumer on one partition from the earliest offset for exactly end
// messages. The default formatter prints "Partition:P<TAB>Offset:O<TAB>h1:v1,h2:v2<TAB>key<TAB>value".
func (d *cliDriver) ReadPartition(ctx context.Context, topic string, partition int32, end int64) ([]consumed, error) {
	if end <= 0 {
		return nil, nil
	}
	fmtFlag := "--property"
	if d.newFlags {
		fmtFlag = "--formatter-property"
	}
	out, err := d.tool(ctx, nil, "org.apache.kafka.tools.consumer.ConsoleConsumer", "--topic", topic,
		"--partition", strconv.Itoa(int(partition)), "--offset", "earliest",
		"--max-messages", strconv.FormatInt(end, 10), "--timeout-ms", "20000",
		fmtFlag, "print.partition=true", fmtFlag, "print.offset=true", fmtFlag, "print.headers=true", fmtFlag, "print.key=true")
	if err != nil {
		return nil, err
	}
	var recs []consumed
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		c, err := parseConsoleLine(sc.Text())
		if err != nil {
			return recs, err
		}
		recs = append(recs, c)
	}
	return recs, sc.Err()
}

func parseConsoleLine(line string) (consumed, error) {
	f := strings.SplitN(line, "\t", 5)
	if len(f) != 5 {
		return consumed{}, fmt.Errorf("console consumer line %q: want 5 tab-separated fields", shorten(line))
	}
	p, perr := strconv.ParseInt(strings.TrimPrefix(f[0], "Partition:"), 10, 32)
	o, oerr := strconv.ParseInt(strings.TrimPrefix(f[1], "Offset:"), 10, 64)
	if err := errors.Join(perr, oerr); err != nil {
		return consumed{}, fmt.Errorf("console consumer line %q: %w", shorten(line), err)
	}
	c := consumed{Offset: o, record: record{Partition: int32(p), Key: f[3], Value: f[4]}}
	if f[2] != "NO_HEADERS" {
		for _, kv := range strings.Split(f[2], ",") {
			k, v, _ := strings.Cut(kv, ":")
			c.Headers = append(c.Headers, header{Key: k, Value: v})
		}
	}
	return c, nil
}

func (d *cliDriver) SetTopicConfig(ctx context.Context, topic, key, value string) error {
	_, err := d.tool(ctx, nil, "kafka.admin.ConfigCommand", "--entity-type", "topics", "--entity-name", topic,
		"--alter", "--add-config", key+"="+value)
	return err
}

// TopicConfig reads kafka-configs --describe, which lists the dynamic configs as "  key=value sensitive=...".
func (d *cliDriver) TopicConfig(ctx context.Context, topic, key string) (string, error) {
	out, err := d.tool(ctx, nil, "kafka.admin.ConfigCommand", "--entity-type", "topics", "--entity-name", topic, "--describe")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), key+"="); ok {
			v, _, _ := strings.Cut(rest, " ")
			return v, nil
		}
	}
	return "", fmt.Errorf("%s not among the dynamic configs", key)
}

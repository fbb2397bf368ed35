// Command mirrorcompare is the copy-throughput benchmark behind `make bench-mirror`: `strom migrate`
// against Apache Kafka's MirrorMaker 2 on the same data in the same run.
//
// It starts two single-node Apache Kafka clusters (source and destination) through the integration
// harness, fills one 8-partition source topic with N records of 1 KiB, then runs rounds; each round copies
// the whole topic once with every tool, each time to a destination topic no earlier copy wrote:
//
//   - MirrorMaker 2 in dedicated mode with exactly-once off (tasks.max=1, the default), source alias
//     s<round> so the topic arrives as s<round>.<topic> and its offsets topic is fresh; timed from the JVM's
//     exec until the destination topic's end offsets add up to N (there are no transaction markers).
//   - MirrorMaker 2 in dedicated mode with exactly-once on (Kafka's "Exactly once" section of its
//     geo-replication docs, KIP-618 and KIP-710): dst.exactly.once.source.support=enabled,
//     dedicated.mode.enable.internal.rest=true with a REST listener on a free 127.0.0.1 port, and the source
//     read read_committed (without which MirrorSourceConnector declares exactly-once unsupported); source
//     alias e<round>. Its destination holds transaction markers, so end offsets cannot tell when the copy
//     is complete; it is complete when MM2's own source positions, committed in the same transactions as
//     the records to its offsets topic mm2-offsets.e<round>.internal on the destination, reached the last
//     offset of every source partition (read read_committed, polled every 50 ms).
//   - `strom migrate --mode at-least-once` and `--mode exactly-once`, with --rename prefix:... and a fresh
//     --name; timed from exec until the process exits, which it does once the copy reached the source end
//     offsets taken at its start and is committed.
//
// Every copy is then checked with `strom verify` (record by record: count, keys, values, headers,
// timestamps, partition by partition, committed records only), outside the timed span; a copy that fails
// it counts as failed and has no rate. Both times include process start (the JVM's is seconds, Strom's
// milliseconds): that is what an operator waits for. Numbers are reported, never asserted.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/integration/harness"
)

// options are the runner's flags.
type options struct {
	records    int
	partitions int
	rounds     int
	stromBin   string
	out        string
	heap       string
	mmHeap     string
	timeout    time.Duration
	verify     bool
}

func main() {
	var o options
	flag.IntVar(&o.records, "records", 400_000, "records of 1 KiB in the source topic")
	flag.IntVar(&o.partitions, "partitions", 8, "partitions of the source topic")
	flag.IntVar(&o.rounds, "rounds", 2, "rounds; each copies the topic once with every tool")
	flag.StringVar(&o.stromBin, "strom-bin", "", "strom binary (default: go build ./cmd/strom into a temp dir)")
	flag.StringVar(&o.out, "out", "bench/MIRROR-RESULTS.md", "report file")
	flag.StringVar(&o.heap, "kafka-heap", "1g", "each Kafka broker's -Xmx")
	flag.StringVar(&o.mmHeap, "mm2-heap", "1g", "MirrorMaker 2's -Xmx")
	flag.DurationVar(&o.timeout, "copy-timeout", 5*time.Minute, "longest one copy may take")
	flag.BoolVar(&o.verify, "verify", true, "check every copy with strom verify (untimed); a copy that differs counts as failed")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, o, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "mirrorcompare:", err)
		os.Exit(1)
	}
}

// errBadFlag reports a flag value the runner cannot use.
var errBadFlag = errors.New("mirrorcompare: bad flag")

func (o options) validate() error {
	switch {
	case o.records < 1:
		return fmt.Errorf("%w: -records %d must be at least 1", errBadFlag, o.records)
	case o.partitions < 1:
		return fmt.Errorf("%w: -partitions %d must be at least 1", errBadFlag, o.partitions)
	case o.rounds < 1:
		return fmt.Errorf("%w: -rounds %d must be at least 1", errBadFlag, o.rounds)
	case o.timeout <= 0:
		return fmt.Errorf("%w: -copy-timeout %v must be positive", errBadFlag, o.timeout)
	}
	return nil
}

const (
	recordSize = 1024
	topic      = "mirror-bench"
)

// Tool names, in the order each round runs them.
const (
	toolMM2      = "MirrorMaker 2 (exactly-once off)"
	toolMM2EOS   = "MirrorMaker 2 (exactly-once)"
	toolStromALO = "strom migrate --mode at-least-once"
	toolStromEOS = "strom migrate --mode exactly-once"
)

var tools = []string{toolMM2, toolMM2EOS, toolStromALO, toolStromEOS}

// baselines maps each strom tool to the MirrorMaker 2 run with the same delivery guarantee, which its
// ratios divide by.
var baselines = map[string]string{toolStromALO: toolMM2, toolStromEOS: toolMM2EOS}

func run(ctx context.Context, o options, stdout, stderr io.Writer) error {
	if err := o.validate(); err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "strom-mirrorcompare-")
	if err != nil {
		return fmt.Errorf("work dir: %w", err)
	}
	defer os.RemoveAll(work)
	if o.stromBin == "" {
		o.stromBin = filepath.Join(work, "strom")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", o.stromBin, "./cmd/strom")
		cmd.Stdout, cmd.Stderr = stderr, stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("build strom: %w", err)
		}
	}
	kafkaOpts := []harness.Option{harness.Heap(o.heap), harness.KafkaJVMFlags()}
	src, err := harness.NewKafka(ctx, filepath.Join(work, "src"), kafkaOpts...)
	if err != nil {
		return fmt.Errorf("source cluster: %w", err)
	}
	defer src.Stop()
	dst, err := harness.NewKafka(ctx, filepath.Join(work, "dst"), kafkaOpts...)
	if err != nil {
		return fmt.Errorf("destination cluster: %w", err)
	}
	defer dst.Stop()
	// A short metadata min age: the watcher asks about topics that appear mid-copy, and the default (5 s)
	// would hold its offset requests back until the cached metadata may be refreshed.
	dcl, err := kgo.NewClient(kgo.SeedBrokers(dst.Seeds()...), kgo.MetadataMinAge(10*time.Millisecond))
	if err != nil {
		return fmt.Errorf("destination client: %w", err)
	}
	defer dcl.Close()
	dadm := kadm.NewClient(dcl)

	fmt.Fprintf(stderr, "filling %s with %d records of %d bytes\n", topic, o.records, recordSize)
	fillStart := time.Now()
	if err := fill(ctx, src.Seeds(), o.records, int32(o.partitions)); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "filled in %v\n", time.Since(fillStart).Round(time.Millisecond))
	srcEnds, err := partitionEnds(ctx, src.Seeds())
	if err != nil {
		return err
	}

	rep := &report{records: o.records, partitions: o.partitions, rounds: o.rounds, loads: []string{loadAvg()},
		args: os.Args[1:]}
	began := time.Now()
	for r := 1; r <= o.rounds; r++ {
		for _, t := range tools {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			m := copyOnce(ctx, o, t, r, work, src, dst, dadm, srcEnds, stderr)
			if m.err == nil && o.verify {
				m.verifyCopy(ctx, o.stromBin, src.Bootstrap(), dst.Bootstrap())
			}
			fmt.Fprintf(stderr, "[round %d] %s: %s\n", r, t, m.oneLine(o.records))
			rep.runs = append(rep.runs, m)
		}
		rep.loads = append(rep.loads, loadAvg())
	}
	rep.elapsed = time.Since(began)
	rep.machine = harness.Machine()
	text := rep.markdown()
	fmt.Fprint(stdout, text)
	if err := os.WriteFile(o.out, []byte(text), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", o.out, err)
	}
	return nil
}

// fill creates the source topic and produces n records of recordSize bytes, spread evenly over the
// partitions, with acks=all and idempotence (franz-go's defaults).
func fill(ctx context.Context, seeds []string, n int, partitions int32) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(20_000))
	if err != nil {
		return fmt.Errorf("fill client: %w", err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, nil, topic); err != nil {
		return fmt.Errorf("create %s: %w", topic, err)
	}
	value := make([]byte, recordSize)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	errc := make(chan error, 1)
	for i := 0; i < n; i++ {
		cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errc <- err:
				default:
				}
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("fill flush: %w", err)
	}
	select {
	case err := <-errc:
		return fmt.Errorf("fill produce: %w", err)
	default:
	}
	return nil
}

// copyOnce copies the source topic once with tool in round r and returns what it measured.
func copyOnce(ctx context.Context, o options, tool string, r int, work string, src, dst *harness.LocalCluster,
	dadm *kadm.Client, srcEnds map[int32]int64, stderr io.Writer) (m run1) {
	m = run1{tool: tool, round: r}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	var start time.Time
	// The watcher notes when the first record reaches the destination, which splits start-up (process,
	// group join, topic creation) from the copy itself. It is stopped and waited for before copyOnce returns.
	firstc := make(chan time.Time, 1)
	watchCtx, stopWatch := context.WithCancel(ctx)
	var first time.Time
	defer func() {
		stopWatch()
		first = <-firstc
		if !first.IsZero() && m.err == nil {
			m.firstRecord = first.Sub(start)
		}
	}()
	watch := func() {
		go func() {
			for {
				// Listing offsets of a topic the client does not know yet blocks for seconds while it retries
				// metadata, so the watcher asks whether the topic exists first.
				if n, err := existingEndOffsets(watchCtx, dadm, m.destTopic); err == nil && n > 0 {
					firstc <- time.Now()
					return
				}
				select {
				case <-watchCtx.Done():
					firstc <- time.Time{}
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		}()
	}
	switch tool {
	case toolMM2, toolMM2EOS:
		eos := tool == toolMM2EOS
		alias := fmt.Sprintf("s%d", r)
		if eos {
			alias = fmt.Sprintf("e%d", r)
		}
		m.destTopic = alias + "." + topic
		m.verifyPrefix = alias + "."
		dir := filepath.Join(work, fmt.Sprintf("mm2-%s", alias))
		props := map[string]string{
			// A fresh source alias per round: fresh destination topic and fresh MM2 offsets topic, so
			// every round copies from offset 0. The harness' "src" entries are then unused.
			"clusters":                   alias + ", dst",
			alias + ".bootstrap.servers": src.Bootstrap(),
			alias + "->dst.enabled":      "true",
			alias + "->dst.topics":       topic,
			"src->dst.enabled":           "false",
			"tasks.max":                  "1",
		}
		var positions *mm2Positions
		if eos {
			ports, err := harness.FreePorts(1)
			if err != nil {
				m.err = err
				return m
			}
			props["dst.exactly.once.source.support"] = "enabled"
			props["dedicated.mode.enable.internal.rest"] = "true"
			props["listeners"] = fmt.Sprintf("http://127.0.0.1:%d", ports[0])
			props[alias+".consumer.isolation.level"] = "read_committed"
			if positions, err = newMM2Positions(dst.Seeds(), alias); err != nil {
				m.err = err
				return m
			}
			defer positions.close()
		}
		jvm := []string{"-Xmx" + o.mmHeap}
		start = time.Now()
		watch()
		mm, err := harness.NewMirrorMakerJVM(ctx, dir, harness.DefaultKafkaVersion, src.Bootstrap(), dst.Bootstrap(),
			topic, props, jvm)
		if err != nil {
			m.err = err
			return m
		}
		defer func() {
			if err := mm.Stop(); err != nil {
				fmt.Fprintf(stderr, "stop mirror maker: %v\n", err)
			}
		}()
		for {
			if eos {
				if positions.poll(ctx, 50*time.Millisecond) && positions.reached(srcEnds) {
					m.elapsed = time.Since(start)
					// A cross-check of the positions: the committed end offsets (markers included) cannot be
					// below N once every record is committed.
					n, err := endOffsets(ctx, dadm, m.destTopic, true)
					m.destRecords = n
					if err == nil && n < int64(o.records) {
						err = fmt.Errorf("MM2 positions reached the source ends but the destination's last stable offsets add up to %d < %d", n, o.records)
					}
					m.err = err
					return m
				}
				if mm.Exited() {
					m.err = fmt.Errorf("mirror maker exited early; log %s", mm.LogPath())
					return m
				}
				if ctx.Err() != nil {
					m.err = fmt.Errorf("MM2 positions %v of source ends %v: %w", positions.pos, srcEnds, ctx.Err())
					return m
				}
				continue
			}
			n, err := endOffsets(ctx, dadm, m.destTopic, false)
			if err == nil && n >= int64(o.records) {
				m.elapsed = time.Since(start)
				m.destRecords = n
				return m
			}
			if mm.Exited() {
				m.err = fmt.Errorf("mirror maker exited early; log %s", mm.LogPath())
				return m
			}
			select {
			case <-ctx.Done():
				m.err = fmt.Errorf("destination holds %d of %d records: %w", n, o.records, ctx.Err())
				return m
			case <-time.After(50 * time.Millisecond):
			}
		}
	default:
		mode := "at-least-once"
		if tool == toolStromEOS {
			mode = "exactly-once"
		}
		prefix := fmt.Sprintf("r%d-%s.", r, mode)
		m.destTopic = prefix + topic
		m.verifyPrefix = prefix
		args := []string{"migrate", "--from", src.Bootstrap(), "--to", dst.Bootstrap(), "--topics", topic,
			"--mode", mode, "--rename", "prefix:" + prefix, "--name", fmt.Sprintf("bench-%d-%s", r, mode),
			"--log-level", "warn", "--progress-interval", "10s"}
		cmd := exec.CommandContext(ctx, o.stromBin, args...)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		start = time.Now()
		watch()
		err := cmd.Run()
		m.elapsed = time.Since(start)
		if err != nil {
			m.err = fmt.Errorf("strom %s: %w; output:\n%s", strings.Join(args, " "), err, out.String())
			return m
		}
		// Exactly-once destinations hold transaction markers, so their end offsets exceed the record count;
		// the committed end offsets still show whether anything is missing.
		// The client's metadata may not know the topic the process just created, so this retries briefly;
		// the time is already taken.
		var n int64
		for try := 0; ; try++ {
			n, err = endOffsets(ctx, dadm, m.destTopic, mode == "exactly-once")
			if err == nil && n >= int64(o.records) {
				m.destRecords = n
				return m
			}
			if try == 50 || ctx.Err() != nil {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		m.destRecords = n
		if err == nil {
			err = fmt.Errorf("destination end offsets add up to %d, want at least %d", n, o.records)
		}
		m.err = err
		return m
	}
}

// existingEndOffsets is endOffsets of a topic that may not exist yet: 0 without delay while it does not.
func existingEndOffsets(ctx context.Context, adm *kadm.Client, t string) (int64, error) {
	topics, err := adm.ListTopics(ctx, t)
	if err != nil {
		return 0, fmt.Errorf("list topic %s: %w", t, err)
	}
	if d, ok := topics[t]; !ok || d.Err != nil || len(d.Partitions) == 0 {
		return 0, nil
	}
	return endOffsets(ctx, adm, t, false)
}

// endOffsets sums the end offsets (the last stable offsets if committed) of topic's partitions.
func endOffsets(ctx context.Context, adm *kadm.Client, t string, committed bool) (int64, error) {
	list := adm.ListEndOffsets
	if committed {
		list = adm.ListCommittedOffsets
	}
	offs, err := list(ctx, t)
	if err != nil {
		return 0, fmt.Errorf("list end offsets of %s: %w", t, err)
	}
	var sum int64
	var ferr error
	offs.Each(func(lo kadm.ListedOffset) {
		if lo.Err != nil && ferr == nil {
			ferr = fmt.Errorf("end offset of %s/%d: %w", t, lo.Partition, lo.Err)
		}
		sum += lo.Offset
	})
	return sum, ferr
}

// loadAvg returns the 1-, 5- and 15-minute load averages, a record of how busy the shared machine was.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// partitionEnds returns the end offset of every partition of the source topic after the fill.
func partitionEnds(ctx context.Context, seeds []string) (map[int32]int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return nil, fmt.Errorf("source client: %w", err)
	}
	defer cl.Close()
	offs, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("source end offsets: %w", err)
	}
	ends := map[int32]int64{}
	var ferr error
	offs.Each(func(lo kadm.ListedOffset) {
		if lo.Err != nil && ferr == nil {
			ferr = fmt.Errorf("source end offset of %s/%d: %w", topic, lo.Partition, lo.Err)
		}
		ends[lo.Partition] = lo.Offset
	})
	return ends, ferr
}

// mm2Positions follows MirrorMaker 2's source positions for the benchmark topic: its Connect offsets topic
// mm2-offsets.<alias>.internal on the destination, read read_committed. With exactly-once on, each record
// there is written in the same transaction as the records it covers, so a committed position p means
// every source record up to p is committed on the destination. Owned by copyOnce's goroutine.
type mm2Positions struct {
	cl    *kgo.Client
	alias string
	pos   map[int32]int64 // source partition -> last source offset copied
}

func newMM2Positions(seeds []string, alias string) (*mm2Positions, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics("mm2-offsets."+alias+".internal"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.MetadataMinAge(10*time.Millisecond),
		kgo.MetadataMaxAge(500*time.Millisecond), kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		return nil, fmt.Errorf("MM2 offsets reader: %w", err)
	}
	return &mm2Positions{cl: cl, alias: alias, pos: map[int32]int64{}}, nil
}

func (p *mm2Positions) close() { p.cl.Close() }

// poll reads what arrived within d and reports whether it read anything without error (a fetch error, such
// as the topic not existing yet, is retried at the next poll).
func (p *mm2Positions) poll(ctx context.Context, d time.Duration) bool {
	pctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	fs := p.cl.PollFetches(pctx)
	fs.EachRecord(func(r *kgo.Record) {
		if part, off, ok := parseMM2Offset(r.Key, r.Value, p.alias); ok && off > p.pos[part] {
			p.pos[part] = off
		}
	})
	return len(p.pos) > 0
}

// reached reports whether every source partition's last offset (end - 1) has been copied.
func (p *mm2Positions) reached(ends map[int32]int64) bool {
	for part, end := range ends {
		if got, ok := p.pos[part]; end > 0 && (!ok || got < end-1) {
			return false
		}
	}
	return true
}

// parseMM2Offset decodes one record of a MirrorMaker 2 offsets topic, keeping the MirrorSourceConnector's
// positions for the benchmark topic from cluster alias: key ["MirrorSourceConnector",{"cluster":...,
// "partition":N,"topic":...}], value {"offset":N} (Connect's JSON converter without schemas).
func parseMM2Offset(key, value []byte, alias string) (partition int32, offset int64, ok bool) {
	var k []json.RawMessage
	if json.Unmarshal(key, &k) != nil || len(k) != 2 {
		return 0, 0, false
	}
	var connector string
	var sp struct {
		Cluster   string `json:"cluster"`
		Partition int32  `json:"partition"`
		Topic     string `json:"topic"`
	}
	if json.Unmarshal(k[0], &connector) != nil || connector != "MirrorSourceConnector" ||
		json.Unmarshal(k[1], &sp) != nil || sp.Cluster != alias || sp.Topic != topic {
		return 0, 0, false
	}
	var v struct {
		Offset *int64 `json:"offset"`
	}
	if json.Unmarshal(value, &v) != nil || v.Offset == nil {
		return 0, 0, false
	}
	return sp.Partition, *v.Offset, true
}

// verifyCopy runs strom verify between the source topic and m's destination topic (untimed) and marks
// m failed when they differ: the benchmark reports rates of correct copies only.
func (m *run1) verifyCopy(ctx context.Context, stromBin, src, dst string) {
	args := []string{"verify", "--from", src, "--to", dst, "--topics", topic, "--rename", "prefix:" + m.verifyPrefix,
		"--log-level", "warn"}
	vctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	began := time.Now()
	out, err := exec.CommandContext(vctx, stromBin, args...).CombinedOutput()
	m.verifyTime = time.Since(began)
	text := strings.TrimSpace(string(out))
	if err != nil {
		m.err = fmt.Errorf("strom %s: %w: %s", strings.Join(args, " "), err, text)
		return
	}
	// The verdict is the last line; the lines before it are per partition.
	m.verified = text[strings.LastIndexByte(text, '\n')+1:]
}

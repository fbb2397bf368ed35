// Command compare is the side-by-side runner behind `make bench-compare`: it starts an Apache Kafka and a
// Strom cluster (one node each by default; -nodes N for replicated clusters) through the integration
// harness, runs the same `strom bench` workloads against each in alternating rounds (Kafka, Strom,
// Kafka, Strom, ...; a fresh cluster for every produce run), and writes a table of both
// results with the Strom/Kafka ratio (min/median/max over the rounds) to
// RESULTS.md, plus PNG plots next to it.
//
// Workloads per round and cluster, all on 8-partition topics created by the bench client, with the same
// franz-go client settings: max produce throughput with 1 KiB and with 100-byte records (acks=all,
// idempotent; also with the lean producer, whose CPU cost is small enough that the cluster sets the
// rate), max consume throughput of the data just written (read -consume-passes times over), and
// end-to-end latency at a fixed rate of half of Kafka's max 1 KiB produce rate measured in the same
// round. Around them it reads the broker process' /proc entries: peak and current resident memory, CPU
// seconds, and the time from process start to ready.
//
// Targets are reported, never asserted: numbers from a shared 2-core machine are noisy.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/stromhq/strom/bench"
	"github.com/stromhq/strom/integration/harness"
)

// options are the runner's flags; defaults keep a full run near 10 minutes on two cores.
type options struct {
	rounds     int
	duration   time.Duration
	partitions int
	clients    int
	heap       string
	out        string
	workDir    string
	stromArgs  string
	// kafkaConfig is extra server.properties of every Kafka node, KEY=VALUE[,KEY=VALUE]: Kafka runs
	// with its defaults unless it is set.
	kafkaConfig string
	nodes       int
	// passes is how many times each consume run reads its topic (bench.Config.Passes).
	passes int
	// gcPercent is the load generator's GOGC in this process (bench.TuneGC).
	gcPercent int
	// holdMemory pauses the guest's free page reporting for the run (see guestmem.go).
	holdMemory bool
}

func main() {
	var o options
	flag.IntVar(&o.rounds, "rounds", 3, "rounds; each runs every workload against Kafka, then Strom")
	flag.DurationVar(&o.duration, "duration", 8*time.Second, "length of each produce, consume and e2e run")
	flag.IntVar(&o.partitions, "partitions", 8, "partitions of every topic")
	flag.IntVar(&o.clients, "clients", 4, "producers and consumers of the max-throughput workloads (the 1-client ones run as well)")
	flag.StringVar(&o.heap, "kafka-heap", "1g", "Kafka's -Xmx")
	flag.StringVar(&o.out, "out", "bench", "directory for RESULTS.md and the PNG plots")
	flag.StringVar(&o.workDir, "work-dir", "", "where the clusters keep their data (default: a temp dir, removed after each round)")
	flag.StringVar(&o.stromArgs, "strom-args", "", "extra `strom serve` flags, space separated (default: none, i.e. fsync=always)")
	flag.StringVar(&o.kafkaConfig, "kafka-config", "", "extra Kafka server.properties, KEY=VALUE[,KEY=VALUE] (default: none, Kafka's defaults)")
	flag.IntVar(&o.passes, "consume-passes", 3, "times each consume run reads its topic from the start (new clients each pass; the run still ends at -duration): a single pass of 100-byte records lasts under a second, and a hiccup of the machine swings it")
	flag.IntVar(&o.nodes, "nodes", 1, "nodes of each cluster; above 1 every topic is replicated (factor min(nodes, 3), min.insync.replicas factor-1)")
	flag.BoolVar(&o.holdMemory, "hold-guest-memory", true, "on a VM guest that reports freed memory to its host (virtio-balloon free page reporting), pause the reporting for the run and restore it after (needs root); otherwise every page-cache page a broker writes costs a host fault")
	flag.Parse()
	o.gcPercent = bench.TuneGC()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, o, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

// errBadFlag reports a flag value the runner cannot use.
var errBadFlag = errors.New("compare: bad flag")

func (o options) validate() error {
	switch {
	case o.rounds < 1:
		return fmt.Errorf("%w: -rounds %d must be at least 1", errBadFlag, o.rounds)
	case o.duration < time.Second:
		return fmt.Errorf("%w: -duration %v must be at least 1s", errBadFlag, o.duration)
	case o.partitions < 1:
		return fmt.Errorf("%w: -partitions %d must be at least 1", errBadFlag, o.partitions)
	case o.clients < 1 || o.clients > o.partitions:
		return fmt.Errorf("%w: -clients %d must be between 1 and the partitions (%d)", errBadFlag, o.clients, o.partitions)
	case o.passes < 1:
		return fmt.Errorf("%w: -consume-passes %d must be at least 1", errBadFlag, o.passes)
	case o.nodes < 1 || o.nodes > 5:
		return fmt.Errorf("%w: -nodes %d must be between 1 and 5", errBadFlag, o.nodes)
	}
	if _, err := o.kafkaProperties(); err != nil {
		return err
	}
	return nil
}

// kafkaProperties parses -kafka-config.
func (o options) kafkaProperties() ([][2]string, error) {
	var props [][2]string
	for kv := range strings.SplitSeq(o.kafkaConfig, ",") {
		if strings.TrimSpace(kv) == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if k = strings.TrimSpace(k); !ok || k == "" || strings.ContainsAny(k, " \t\n") || strings.ContainsRune(v, '\n') {
			return nil, fmt.Errorf("%w: -kafka-config entry %q is not KEY=VALUE", errBadFlag, kv)
		}
		props = append(props, [2]string{k, strings.TrimSpace(v)})
	}
	return props, nil
}

// run does every round, then writes the report; a failed workload is recorded and the rounds go on.
func run(ctx context.Context, o options, stdout, stderr io.Writer) error {
	if err := o.validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return fmt.Errorf("output dir: %w", err)
	}
	kinds := []kind{
		{name: "kafka", start: func(ctx context.Context, dir string) (*harness.LocalCluster, error) {
			opts := []harness.Option{harness.Heap(o.heap), harness.ReadyPoll(5 * time.Millisecond), harness.Nodes(o.nodes)}
			props, _ := o.kafkaProperties() // checked by validate
			for _, kv := range props {
				opts = append(opts, harness.BrokerConfig(kv[0], kv[1]))
			}
			return harness.NewKafka(ctx, dir, opts...)
		}},
		{name: "strom", start: func(ctx context.Context, dir string) (*harness.LocalCluster, error) {
			opts := []harness.Option{harness.ReadyPoll(5 * time.Millisecond), harness.Nodes(o.nodes)}
			if f := strings.Fields(o.stromArgs); len(f) > 0 {
				opts = append(opts, harness.StromArgs(f...))
			}
			return harness.NewStrom(ctx, dir, opts...)
		}},
	}
	mem := holdGuestMemory(pageReportingOrder, o.holdMemory)
	defer func() {
		if err := mem.release(); err != nil {
			fmt.Fprintln(stderr, "compare:", err)
		}
	}()
	fmt.Fprintln(stderr, mem.state)
	var rounds [][2]*measurement
	began := time.Now()
	loads := []string{loadAvg()}
	e2eRate := 0.0
	for r := 1; r <= o.rounds; r++ {
		var pair [2]*measurement
		for i, k := range kinds {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			rate := e2eRate
			if i == 0 {
				rate = 0 // Kafka derives the round's rate from its own max
			}
			m := measure(ctx, o, k, r, rate, stderr)
			pair[i] = m
			if i == 0 && m.produce1K != nil && m.produce1K.RecordsPerSec > 0 {
				// Both clusters of a round get the same fixed rate: half of Kafka's max in this round.
				e2eRate = m.produce1K.RecordsPerSec / 2
			}
			fmt.Fprintf(stderr, "[%s round %d] done: %s\n", k.name, r, m.oneLine())
		}
		rounds = append(rounds, pair)
		loads = append(loads, loadAvg())
	}
	rep := newReport(o, rounds, time.Since(began))
	rep.loads = loads
	rep.guestMemory = mem.state
	fmt.Fprint(stdout, rep.table())
	return rep.write(o.out)
}

// kind is one of the two clusters under test.
type kind struct {
	name  string
	start func(ctx context.Context, dir string) (*harness.LocalCluster, error)
}

// measurement is everything one round measured on one cluster; nil results are failed workloads,
// listed in errs.
type measurement struct {
	kind  string
	round int

	startToReady time.Duration
	cpuStart     float64 // CPU seconds of the broker process from exec to ready
	cpuWork      float64 // CPU seconds of the broker process during the workloads
	peakRSS      int64   // VmHWM at the end, bytes
	endRSS       int64   // VmRSS at the end, bytes
	movedBytes   int64   // produced + consumed value bytes over all workloads

	produce1K, produce100, consume1K, consume100, e2e *bench.Result
	// The same workloads with opts.clients producers or consumers.
	produce1KN, produce100N, consume1KN, consume100N *bench.Result
	// Produce with opts.clients lean producers (bench.ClientLean): what the cluster takes when the
	// client's CPU is not the limit.
	produce1KLean, produce100Lean *bench.Result
	// Consume of the 1-producer topics with opts.clients lean consumers (bench.ClientLean): what the
	// cluster serves when record decoding is not the limit.
	consume1KLean, consume100Lean *bench.Result
	e2eRate                       float64
	errs                          []string
}

// measure runs a round's workloads on fresh clusters of kind k, one after the other, each removed before
// the next starts: every produce run writes into a cluster of its own (the consume runs read what the
// 1-producer run of their size wrote, on its cluster; e2e runs on the last one, the 1 KiB cluster). On
// this VM (Firecracker) a broker writes into page cache far more slowly while the cache holds gigabytes of
// earlier runs' files: new pages then come from memory the guest handed back to the host (free page
// reporting, see guestmem.go), which costs a host fault each. Measured with `strom bench produce --client
// lean --record-size 100 --producers 4` against one `strom serve`: 8.5-9.8M records/s on a fresh node or
// after the earlier 7 GB were deleted or dropped from the cache, 3.5-4.1M with them cached. Kafka, at
// about 4M records/s, barely moved, so the artifact penalizes the faster writer. Deleting a cluster's files
// gives their recently touched pages back, so with one writing run per cluster every run meets the same
// memory state on both clusters, whether or not the reporting is paused. The process figures (memory, CPU,
// start to ready) are the last cluster's.
func measure(ctx context.Context, o options, k kind, round int, e2eRate float64, stderr io.Writer) *measurement {
	m := &measurement{kind: k.name, round: round}
	fail := func(what string, err error) { m.errs = append(m.errs, fmt.Sprintf("%s: %v", what, err)) }
	dir := o.workDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "strom-compare-")
		if err != nil {
			fail("work dir", err)
			return m
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	dir = filepath.Join(dir, fmt.Sprintf("%s-%d", k.name, round))
	n := o.clients
	produceAlone := func(label, name string, res **bench.Result, mod func(*bench.Config)) {
		runOn(ctx, o, k, round, dir+"-"+label, name, stderr, fail, func(base bench.Config) {
			*res = runWorkload(ctx, base, name, bench.ModeProduce, mod, fail)
		})
	}
	produceAlone("lean-1k", fmt.Sprintf("produce 1KiB lean x%d", n), &m.produce1KLean, func(c *bench.Config) {
		c.Topic, c.RecordSize, c.Producers, c.Client = "bench-1k-lean", 1024, n, bench.ClientLean
	})
	produceAlone("lean-100", fmt.Sprintf("produce 100B lean x%d", n), &m.produce100Lean, func(c *bench.Config) {
		c.Topic, c.RecordSize, c.Producers, c.Client = "bench-100-lean", 100, n, bench.ClientLean
	})
	produceAlone("100-n", fmt.Sprintf("produce 100B x%d", n), &m.produce100N, func(c *bench.Config) {
		c.Topic, c.RecordSize, c.Producers = "bench-100-n", 100, n
	})
	produceAlone("1k-n", fmt.Sprintf("produce 1KiB x%d", n), &m.produce1KN, func(c *bench.Config) {
		c.Topic, c.RecordSize, c.Producers = "bench-1k-n", 1024, n
	})
	runOn(ctx, o, k, round, dir+"-100", "produce 100B", stderr, fail, func(base bench.Config) {
		m.produce100 = runWorkload(ctx, base, "produce 100B", bench.ModeProduce, func(c *bench.Config) { c.Topic, c.RecordSize = "bench-100", 100 }, fail)
		// Both consumes read the topic just written.
		m.consume100 = runWorkload(ctx, base, "consume 100B", bench.ModeConsume, func(c *bench.Config) { c.Topic, c.RecordSize = "bench-100", 100 }, fail)
		m.consume100N = runWorkload(ctx, base, fmt.Sprintf("consume 100B x%d", n), bench.ModeConsume, func(c *bench.Config) {
			c.Topic, c.RecordSize, c.Consumers = "bench-100", 100, n
		}, fail)
		m.consume100Lean = runWorkload(ctx, base, fmt.Sprintf("consume 100B lean x%d", n), bench.ModeConsume, func(c *bench.Config) {
			c.Topic, c.RecordSize, c.Consumers, c.Client = "bench-100", 100, n, bench.ClientLean
		}, fail)
	})
	fmt.Fprintf(stderr, "[%s round %d] starting (produce 1KiB, consumes, e2e)\n", k.name, round)
	c, err := k.start(ctx, dir)
	ready := time.Now()
	if err != nil {
		fail("start", err)
		return m
	}
	defer func() {
		if err := c.Stop(); err != nil {
			fail("stop", err)
		}
	}()
	var pids []int
	for i := range c.Nodes() {
		pid, started, ok := c.Process(i)
		if !ok {
			fail("start", fmt.Errorf("node %d has no process", i))
			return m
		}
		pids = append(pids, pid)
		if i == 0 {
			m.startToReady = ready.Sub(started)
		}
	}
	st0, err := readProcs(pids)
	if err != nil {
		fail("proc", err)
		return m
	}
	m.cpuStart = st0.cpuSeconds

	base := baseConfig(o, c, k, round, stderr)
	runOne := func(name string, mode bench.Mode, mod func(*bench.Config)) *bench.Result {
		res := runWorkload(ctx, base, name, mode, mod, fail)
		if res != nil {
			m.movedBytes += res.Bytes
			if mode == bench.ModeE2E {
				m.movedBytes += res.Bytes // read back as well
			}
		}
		return res
	}
	m.produce1K = runOne("produce 1KiB", bench.ModeProduce, func(c *bench.Config) { c.Topic, c.RecordSize = "bench-1k", 1024 })
	// Both consumes read the topic just written.
	m.consume1K = runOne("consume 1KiB", bench.ModeConsume, func(c *bench.Config) { c.Topic, c.RecordSize = "bench-1k", 1024 })
	m.consume1KN = runOne(fmt.Sprintf("consume 1KiB x%d", n), bench.ModeConsume, func(c *bench.Config) {
		c.Topic, c.RecordSize, c.Consumers = "bench-1k", 1024, n
	})
	m.consume1KLean = runOne(fmt.Sprintf("consume 1KiB lean x%d", n), bench.ModeConsume, func(c *bench.Config) {
		c.Topic, c.RecordSize, c.Consumers, c.Client = "bench-1k", 1024, n, bench.ClientLean
	})
	if e2eRate <= 0 && m.produce1K != nil {
		e2eRate = m.produce1K.RecordsPerSec / 2 // only when Kafka's run of this round failed
	}
	if e2eRate > 0 {
		m.e2eRate = e2eRate
		m.e2e = runOne("e2e", bench.ModeE2E, func(c *bench.Config) {
			c.Topic, c.RecordSize, c.Rate = "bench-e2e", 1024, e2eRate
		})
	} else {
		fail("e2e", errors.New("no produce rate to derive the fixed rate from"))
	}
	st1, err := readProcs(pids)
	if err != nil {
		fail("proc", err)
		return m
	}
	m.cpuWork = st1.cpuSeconds - st0.cpuSeconds
	m.peakRSS, m.endRSS = st1.vmHWM, st1.vmRSS
	return m
}

// runOn starts a fresh cluster of kind k in dir, runs work against it, then stops it and removes dir.
// Failures are recorded with fail and labelled with what.
func runOn(ctx context.Context, o options, k kind, round int, dir, what string, stderr io.Writer,
	fail func(string, error), work func(base bench.Config)) {
	defer os.RemoveAll(dir)
	fmt.Fprintf(stderr, "[%s round %d] starting (%s)\n", k.name, round, what)
	c, err := k.start(ctx, dir)
	if err != nil {
		fail("start ("+what+")", err)
		return
	}
	defer func() {
		if err := c.Stop(); err != nil {
			fail("stop ("+what+")", err)
		}
	}()
	work(baseConfig(o, c, k, round, stderr))
}

// baseConfig is the bench configuration every workload of a round starts from, against c.
func baseConfig(o options, c *harness.LocalCluster, k kind, round int, stderr io.Writer) bench.Config {
	base := bench.DefaultConfig()
	base.Brokers = c.Seeds()
	base.Partitions = int32(o.partitions)
	base.Duration = o.duration
	base.Passes = o.passes // consume runs only: runWorkload resets it for the others
	base.Acks = "all"
	if o.nodes > 1 {
		rf := replicationFactor(o.nodes)
		base.ReplicationFactor = int16(rf)
		base.TopicConfigs = map[string]string{"min.insync.replicas": fmt.Sprint(minInsync(rf))}
	}
	base.Progress = &prefixWriter{w: stderr, prefix: fmt.Sprintf("[%s round %d] ", k.name, round)}
	return base
}

// runWorkload runs one workload from base changed by mod; a failure is recorded with fail and gives nil.
func runWorkload(ctx context.Context, base bench.Config, name string, mode bench.Mode, mod func(*bench.Config),
	fail func(string, error)) *bench.Result {
	cfg := base
	mod(&cfg)
	if mode != bench.ModeConsume {
		cfg.Passes = 1
	}
	res, err := bench.Run(ctx, mode, cfg)
	if err != nil {
		fail(name, err)
		return nil
	}
	if res.Errors > 0 {
		fail(name, fmt.Errorf("%d client errors, first: %s", res.Errors, res.FirstError))
	}
	return res
}

// oneLine summarises a measurement for the progress log.
func (m *measurement) oneLine() string {
	var parts []string
	add := func(name string, r *bench.Result) {
		if r != nil {
			parts = append(parts, fmt.Sprintf("%s %.0f rec/s", name, r.RecordsPerSec))
		}
	}
	add("produce 1KiB", m.produce1K)
	add("produce 1KiB xN", m.produce1KN)
	add("produce 100B", m.produce100)
	add("produce 100B xN", m.produce100N)
	add("produce 1KiB lean xN", m.produce1KLean)
	add("produce 100B lean xN", m.produce100Lean)
	add("consume 1KiB", m.consume1K)
	add("consume 1KiB xN", m.consume1KN)
	add("consume 100B", m.consume100)
	add("consume 100B xN", m.consume100N)
	if m.e2e != nil && m.e2e.E2E != nil {
		parts = append(parts, fmt.Sprintf("e2e p99 %.2fms", m.e2e.E2E.P99))
	}
	parts = append(parts, fmt.Sprintf("peak RSS %d MiB, ready in %v", m.peakRSS>>20, m.startToReady.Round(time.Millisecond)))
	if len(m.errs) > 0 {
		parts = append(parts, "errors: "+strings.Join(m.errs, "; "))
	}
	return strings.Join(parts, ", ")
}

// prefixWriter prefixes every write (one progress line each) with a fixed tag.
type prefixWriter struct {
	w      io.Writer
	prefix string
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	if _, err := io.WriteString(p.w, p.prefix+string(b)); err != nil {
		return 0, err
	}
	return len(b), nil
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

// replicationFactor is the topics' replication factor in a cluster of nodes.
func replicationFactor(nodes int) int { return min(nodes, 3) }

// minInsync is the topics' min.insync.replicas for replication factor rf: one failure tolerated.
func minInsync(rf int) int { return max(1, rf-1) }

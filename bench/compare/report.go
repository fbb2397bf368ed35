package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/stromhq/strom/bench"
	"github.com/stromhq/strom/integration/harness"
)

// metric is one row of the results table.
type metric struct {
	name string
	unit string
	// short labels the metric in the throughput plot; empty keeps it out of the plot.
	short string
	// get extracts the value from a measurement; NaN when the workload failed.
	get func(*measurement) float64
	// target is the Strom/Kafka ratio aimed for; 0 = none. higherBetter says which side of it is met.
	target       float64
	higherBetter bool
}

func resultOr(r *bench.Result, f func(*bench.Result) float64) float64 {
	if r == nil {
		return math.NaN()
	}
	return f(r)
}

func latencyOr(r *bench.Result, f func(*bench.Summary) float64) float64 {
	if r == nil || r.E2E == nil {
		return math.NaN()
	}
	return f(r.E2E)
}

func recPerSec(r *bench.Result) float64 { return r.RecordsPerSec }
func mbPerSec(r *bench.Result) float64  { return r.MBPerSec }

// clientCores is the load generator's average CPU use during a workload, in cores.
func clientCores(r *bench.Result) float64 {
	if r.Seconds <= 0 {
		return math.NaN()
	}
	return r.ClientCPUSeconds / r.Seconds
}

// tableMetrics lists the table rows in order for a run whose max-throughput workloads use clients
// producers or consumers besides the single-client ones. The throughput targets are marked on both:
// neither is the broker alone on two shared cores (one client's pipeline bounds the first, the clients'
// CPU the second), and a reader should see both verdicts.
func tableMetrics(clients int) []metric {
	prodN := fmt.Sprintf("%d producers", clients)
	consN := fmt.Sprintf("%d consumers", clients)
	leanN := fmt.Sprintf("%d lean producers", clients)
	leanC := fmt.Sprintf("%d lean consumers", clients)
	return []metric{
		{"produce 1 KiB, acks=all, idempotent, " + leanN, "MB/s", "produce 1 KiB\n" + leanN, func(m *measurement) float64 { return resultOr(m.produce1KLean, mbPerSec) }, 1.5, true},
		{"produce 100 B, acks=all, idempotent, " + leanN, "records/s", "produce 100 B\n" + leanN, func(m *measurement) float64 { return resultOr(m.produce100Lean, recPerSec) }, 1.5, true},
		{"consume 1 KiB, " + leanC, "MB/s", "consume 1 KiB\n" + leanC, func(m *measurement) float64 { return resultOr(m.consume1KLean, mbPerSec) }, 1.5, true},
		{"consume 100 B, " + leanC, "records/s", "consume 100 B\n" + leanC, func(m *measurement) float64 { return resultOr(m.consume100Lean, recPerSec) }, 1.5, true},
		{"produce 1 KiB, acks=all, idempotent, " + prodN, "MB/s", "produce 1 KiB\n" + prodN, func(m *measurement) float64 { return resultOr(m.produce1KN, mbPerSec) }, 1.5, true},
		{"produce 100 B, acks=all, idempotent, " + prodN, "records/s", "produce 100 B\n" + prodN, func(m *measurement) float64 { return resultOr(m.produce100N, recPerSec) }, 1.5, true},
		{"consume 1 KiB, " + consN, "MB/s", "consume 1 KiB\n" + consN, func(m *measurement) float64 { return resultOr(m.consume1KN, mbPerSec) }, 1.5, true},
		{"consume 100 B, " + consN, "records/s", "consume 100 B\n" + consN, func(m *measurement) float64 { return resultOr(m.consume100N, recPerSec) }, 1.5, true},
		{"produce 1 KiB, acks=all, idempotent, 1 producer", "MB/s", "produce 1 KiB\n1 producer", func(m *measurement) float64 { return resultOr(m.produce1K, mbPerSec) }, 1.5, true},
		{"produce 100 B, acks=all, idempotent, 1 producer", "records/s", "produce 100 B\n1 producer", func(m *measurement) float64 { return resultOr(m.produce100, recPerSec) }, 1.5, true},
		{"consume 1 KiB, 1 consumer", "MB/s", "consume 1 KiB\n1 consumer", func(m *measurement) float64 { return resultOr(m.consume1K, mbPerSec) }, 1.5, true},
		{"consume 100 B, 1 consumer", "records/s", "consume 100 B\n1 consumer", func(m *measurement) float64 { return resultOr(m.consume100, recPerSec) }, 1.5, true},
		{"produce 1 KiB, 1 producer: p99 ack latency", "ms", "", func(m *measurement) float64 {
			return resultOr(m.produce1K, func(r *bench.Result) float64 { return r.Produce.P99 })
		}, 0, false},
		{"e2e rate (half of Kafka's 1 KiB max, 1 producer)", "records/s", "", func(m *measurement) float64 { return nanIfZero(m.e2eRate) }, 0, false},
		{"e2e latency p50", "ms", "", func(m *measurement) float64 { return latencyOr(m.e2e, func(s *bench.Summary) float64 { return s.P50 }) }, 0, false},
		{"e2e latency p99", "ms", "", func(m *measurement) float64 { return latencyOr(m.e2e, func(s *bench.Summary) float64 { return s.P99 }) }, 0.5, false},
		{"e2e latency p99.9", "ms", "", func(m *measurement) float64 {
			return latencyOr(m.e2e, func(s *bench.Summary) float64 { return s.P999 })
		}, 0, false},
		{"e2e latency max", "ms", "", func(m *measurement) float64 { return latencyOr(m.e2e, func(s *bench.Summary) float64 { return s.Max }) }, 0, false},
		{"peak RSS (VmHWM)", "MiB", "", func(m *measurement) float64 { return nanIfZero(float64(m.peakRSS) / (1 << 20)) }, 0.25, false},
		{"RSS at end (VmRSS)", "MiB", "", func(m *measurement) float64 { return nanIfZero(float64(m.endRSS) / (1 << 20)) }, 0, false},
		{"load generator CPU, produce 100 B, " + prodN, "cores", "", func(m *measurement) float64 { return resultOr(m.produce100N, clientCores) }, 0, false},
		{"load generator CPU, produce 100 B, " + leanN, "cores", "", func(m *measurement) float64 { return resultOr(m.produce100Lean, clientCores) }, 0, false},
		{"broker CPU during workloads", "s", "", func(m *measurement) float64 { return nanIfZero(m.cpuWork) }, 0, false},
		{"broker CPU per GB moved", "s/GB", "", func(m *measurement) float64 {
			if m.movedBytes == 0 {
				return math.NaN()
			}
			return m.cpuWork / (float64(m.movedBytes) / 1e9)
		}, 0, false},
		{"broker CPU from exec to ready", "s", "", func(m *measurement) float64 {
			if m.startToReady == 0 {
				return math.NaN() // never became ready
			}
			return m.cpuStart
		}, 0, false},
		{"process start to ready", "s", "", func(m *measurement) float64 { return nanIfZero(m.startToReady.Seconds()) }, 0.1, false},
	}
}

func nanIfZero(v float64) float64 {
	if v == 0 {
		return math.NaN()
	}
	return v
}

// stats are min, median and max of the finite values; ok is false when there are none.
type stats struct {
	min, median, max float64
	n                int
}

func summarize(vs []float64) (stats, bool) {
	var xs []float64
	for _, v := range vs {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			xs = append(xs, v)
		}
	}
	if len(xs) == 0 {
		return stats{}, false
	}
	slices.Sort(xs)
	med := xs[len(xs)/2]
	if len(xs)%2 == 0 {
		med = (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
	}
	return stats{min: xs[0], median: med, max: xs[len(xs)-1], n: len(xs)}, true
}

// report is the finished comparison.
type report struct {
	opts    options
	metrics []metric
	rounds  [][2]*measurement // [round][0 = kafka, 1 = strom]
	elapsed time.Duration
	date    time.Time
	// loads are /proc/loadavg samples: before the first round and after each round.
	loads []string
	// guestMemory says what the run did about the guest's free page reporting.
	guestMemory string
}

func newReport(o options, rounds [][2]*measurement, elapsed time.Duration) *report {
	return &report{opts: o, metrics: tableMetrics(o.clients), rounds: rounds, elapsed: elapsed, date: time.Now().UTC()}
}

// row computes one metric's Kafka and Strom medians and the per-round Strom/Kafka ratios.
func (rep *report) row(m metric) (kafka, strom, ratio stats, okK, okS, okR bool) {
	var ks, ss, rs []float64
	for _, pair := range rep.rounds {
		k, s := m.get(pair[0]), m.get(pair[1])
		ks, ss = append(ks, k), append(ss, s)
		rs = append(rs, s/k)
	}
	kafka, okK = summarize(ks)
	strom, okS = summarize(ss)
	ratio, okR = summarize(rs)
	return
}

// table renders the results as a Markdown table.
func (rep *report) table() string {
	var b strings.Builder
	b.WriteString("| metric | unit | Kafka median | Strom median | Strom/Kafka min / median / max | target | met (median) |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|:---:|\n")
	for _, m := range rep.metrics {
		k, s, r, okK, okS, okR := rep.row(m)
		cell := func(st stats, ok bool) string {
			if !ok {
				return "n/a"
			}
			return fmtNum(st.median)
		}
		ratio, target, met := "n/a", "", ""
		if okR {
			ratio = fmt.Sprintf("%.2f / %.2f / %.2f", r.min, r.median, r.max)
		}
		if m.target > 0 {
			if m.higherBetter {
				target = fmt.Sprintf(">= %.2gx", m.target)
			} else {
				target = fmt.Sprintf("<= %.2gx", m.target)
			}
			if okR {
				met = "no"
				if (m.higherBetter && r.median >= m.target) || (!m.higherBetter && r.median <= m.target) {
					met = "yes"
				}
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", m.name, m.unit, cell(k, okK), cell(s, okS), ratio, target, met)
	}
	return b.String()
}

// rawTable lists every round's values, so the spread behind the medians is visible.
func (rep *report) rawTable() string {
	var b strings.Builder
	b.WriteString("| metric |")
	for i := range rep.rounds {
		fmt.Fprintf(&b, " Kafka r%d | Strom r%d |", i+1, i+1)
	}
	b.WriteString("\n|---|")
	for range rep.rounds {
		b.WriteString("---:|---:|")
	}
	b.WriteString("\n")
	for _, m := range rep.metrics {
		fmt.Fprintf(&b, "| %s (%s) |", m.name, m.unit)
		for _, pair := range rep.rounds {
			for _, x := range pair {
				v := m.get(x)
				if math.IsNaN(v) {
					b.WriteString(" n/a |")
				} else {
					fmt.Fprintf(&b, " %s |", fmtNum(v))
				}
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// fmtNum prints a value with three significant digits, without exponent for usual magnitudes.
func fmtNum(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1000:
		return fmt.Sprintf("%.0f", v)
	case a >= 100:
		return fmt.Sprintf("%.1f", v)
	case a >= 10:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3f", v)
}

// write puts RESULTS.md and the plots into dir.
func (rep *report) write(dir string) error {
	if err := plotLatency(rep, filepath.Join(dir, "e2e-latency.png")); err != nil {
		return err
	}
	if err := plotThroughput(rep, filepath.Join(dir, "throughput.png")); err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Strom vs Apache Kafka, side by side\n\n")
	cmdline := fmt.Sprintf("go run ./bench/compare -out %s -rounds %d -duration %v -clients %d -consume-passes %d",
		rep.opts.out, rep.opts.rounds, rep.opts.duration, rep.opts.clients, rep.opts.passes)
	if rep.opts.stromArgs != "" {
		cmdline += fmt.Sprintf(" -strom-args %q", rep.opts.stromArgs)
	}
	if rep.opts.kafkaConfig != "" {
		cmdline += fmt.Sprintf(" -kafka-config %q", rep.opts.kafkaConfig)
	}
	if rep.opts.nodes > 1 {
		cmdline += fmt.Sprintf(" -nodes %d", rep.opts.nodes)
	}
	target := "bench-compare"
	if rep.opts.nodes > 1 {
		target = "bench-compare-replicated"
	}
	fmt.Fprintf(&b, "Generated %s by `make %s` (`%s`) in %v.\n\n",
		rep.date.Format("2006-01-02 15:04 MST"), target, cmdline, rep.elapsed.Round(time.Second))
	b.WriteString("## Machine\n\n")
	for _, l := range harness.Machine() {
		fmt.Fprintf(&b, "- %s\n", l)
	}
	if rep.guestMemory != "" {
		fmt.Fprintf(&b, "- %s\n", rep.guestMemory)
	}
	fmt.Fprintf(&b, `
## Setup

- Apache Kafka %s, %s in KRaft mode, started by the integration harness with its
  defaults (server.properties written by integration/harness/kafka.go)%s and -Xmx%s.
- Strom: %s with its defaults%s.%s
- Both on 127.0.0.1; the load generator (`+"`strom bench`"+`, franz-go, identical client settings for both:
  franz-go's defaults, i.e. linger 10 ms, up to 5 produce requests in flight per connection with
  idempotence, 32 MiB of buffered records) runs in the runner's process on the same machine, so client and
  broker share the 2 cores. The 10 ms linger puts a floor of about 5 ms under the median latencies. The
  load generator runs with GOGC=%d (Go's default of 100 spent about half its CPU collecting franz-go's
  request buffers; see bench/gc.go).
- Per round and cluster, on a fresh cluster: produce at max rate for %v with 1 KiB records and with
  100-byte records (8 partitions, acks=all, idempotent, no compression), once with 1 producer and
  once with %d producers (each its own client and connection, the topic's partitions shared by all);
  consume each 1-producer topic from the start with 1 and with %d consumers (partitions split
  round-robin, %s, up to %v each); end-to-end latency at a fixed rate of half of Kafka's 1-producer 1 KiB
  max of that round (1 producer, 1 consumer), measured from each record's intended send time
  (corrected for coordinated omission). Rounds alternate Kafka, Strom, Kafka, Strom, ...
- The first four rows use `+"`strom bench --client lean`"+` (%d clients, same topic layout): a producer
  (acks=all, idempotent) that sends full 1 MB batches encoded once, re-stamping each batch's header,
  sequence and CRC-32C per request, with 5 requests in flight per connection; and a consumer that keeps
  one fetch in flight per connection with franz-go's byte limits, checks every batch's CRC-32C and sums
  the records' sizes from their varints without building records. They need a fraction of franz-go's
  CPU (the producer about a tenth per record), so these rows show what each cluster can take and serve
  on this machine; the franz-go rows show what an application's client gets, where franz-go's own CPU
  (about 1.3 s per GB produced, more per record at 100 B, and a Record built for every record read)
  shares the two cores and bounds both clusters. Every produce run writes into a fresh cluster of its
  own, removed before the next one starts (the consumes, franz-go then lean, read what the 1-producer
  run of their size wrote, on its cluster; e2e runs on the 1 KiB one, started last), so each run meets
  the same memory state on both clusters. Memory, CPU and start-up figures are the last cluster's.
- Guest memory (see Machine): this VM's balloon driver hands memory the guest frees back to the host
  within seconds (free page reporting), and the next touch of such memory costs a host fault. Writing
  into fresh page cache then runs at about 340 MB/s instead of 1.5 GB/s (dd of 2 GiB with fdatasync,
  memory freed 15 s before against just before), which caps both brokers' produce rate at the host's
  fault rate rather than their own. The runner pauses the reporting for the run where it may (root)
  and restores it after; `+"`-hold-guest-memory=false`"+` measures with it on.
- The throughput targets are marked on the lean, the %d-client and the 1-client rows. With one
  franz-go client, that client's request pipeline (one fetch in flight, at most 5 produce requests)
  is part of the figure; with several, the clients' own CPU on the same two cores is, and a broker
  that needs less CPU leaves more of it to them.
- Ratios are Strom/Kafka per round; min/median/max are over the %d rounds. Targets are reported, never
  asserted.
- Memory is the broker process' VmHWM (peak) and VmRSS (at the end of the round) from /proc/PID/status;
  CPU is utime+stime from /proc/PID/stat; start to ready is from exec of the process to the first
  Metadata answer listing the broker (polled every 5 ms).

%s

**Noise.** This machine has 2 cores that other jobs (compilers, JVMs of other test suites) shared
during the run, and client and broker share them too: load averages (1/5/15 min) before the first round
and after each round were %s. Differences within the per-round spread (min..max below) are noise.

## Results

`, harness.DefaultKafkaVersion, kafkaNodesNote(rep.opts.nodes), kafkaConfigNote(rep.opts.kafkaConfig), rep.opts.heap, stromNodesNote(rep.opts.nodes),
		stromArgsNote(rep.opts.stromArgs), replicationNote(rep.opts.nodes), rep.opts.gcPercent, rep.opts.duration, rep.opts.clients, rep.opts.clients, passesNote(rep.opts.passes), rep.opts.duration, rep.opts.clients, rep.opts.clients, len(rep.rounds), durabilityNote(rep.opts.stromArgs),
		strings.Join(rep.loads, "; "))
	b.WriteString(rep.table())
	b.WriteString("\n![end-to-end latency percentiles](e2e-latency.png)\n\n![throughput](throughput.png)\n\n## Every round\n\n")
	b.WriteString(rep.rawTable())
	var errs []string
	for _, pair := range rep.rounds {
		for _, m := range pair {
			for _, e := range m.errs {
				errs = append(errs, fmt.Sprintf("- %s round %d: %s", m.kind, m.round, e))
			}
		}
	}
	if len(errs) > 0 {
		b.WriteString("\n## Errors during the run\n\n" + strings.Join(errs, "\n") + "\n")
	}
	path := filepath.Join(dir, "RESULTS.md")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func kafkaNodesNote(nodes int) string {
	if nodes <= 1 {
		return "one combined broker+controller node"
	}
	return fmt.Sprintf("%d combined broker+controller nodes (each its own JVM)", nodes)
}

func stromNodesNote(nodes int) string {
	if nodes <= 1 {
		return "one `strom serve` node"
	}
	return fmt.Sprintf("%d `strom serve` nodes (static voters)", nodes)
}

// replicationNote describes the topics of a multi-node run and how its process figures add up.
func replicationNote(nodes int) string {
	if nodes <= 1 {
		return ""
	}
	rf := replicationFactor(nodes)
	return fmt.Sprintf("\n- Every topic has replication factor %d and min.insync.replicas=%d, so an acks=all write "+
		"is answered once every in-sync replica has it. All nodes share the same 2 cores and disk. Memory "+
		"and CPU figures are the sums over the nodes; start to ready is from the first exec to the first "+
		"Metadata answer listing every node.", rf, minInsync(rf))
}

// passesNote says how many times each consume run read its topic.
func passesNote(passes int) string {
	if passes <= 1 {
		return "the topic read once"
	}
	return fmt.Sprintf("the topic read %d times over, new clients each pass, the rate over all passes", passes)
}

func kafkaConfigNote(config string) string {
	if strings.TrimSpace(config) == "" {
		return ""
	}
	return fmt.Sprintf(", with `%s` set (`-kafka-config`)", config)
}

func stromArgsNote(args string) string {
	if strings.TrimSpace(args) == "" {
		return " (fsync=always: the log is fsynced before acks=all is answered)"
	}
	return fmt.Sprintf(" and `%s`", args)
}

// durabilityNote explains the flush policies behind the numbers.
func durabilityNote(stromArgs string) string {
	kafka := "Kafka by default never fsyncs on the produce path (it relies on replication and the OS page " +
		"cache), so with a single node an acknowledged record can be lost on power failure."
	if strings.Contains(stromArgs, "--fsync") {
		return fmt.Sprintf("**Durability.** Strom ran with `%s`. %s", strings.TrimSpace(stromArgs), kafka)
	}
	return "**Durability differs.** Strom fsyncs the log before it answers an acks=all produce (group " +
		"commit) and exposes to consumers only what is fsynced. " + kafka + " Strom's numbers pay for a " +
		"guarantee Kafka's default does not give; `strom serve --fsync=never` is the like-for-like setting."
}

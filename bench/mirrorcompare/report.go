package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/stromhq/strom/integration/harness"
)

// run1 is one copy of the source topic by one tool; err set means it failed and has no rates.
type run1 struct {
	tool        string
	round       int
	destTopic   string
	elapsed     time.Duration
	firstRecord time.Duration // from start until the destination held its first record; 0 if unknown
	destRecords int64         // sum of destination end offsets after the copy (markers included for exactly-once)
	// verifyPrefix is the --rename prefix under which strom verify finds the copy; verified is verify's
	// verdict ("" when not verified) and verifyTime how long it took (not part of elapsed).
	verifyPrefix string
	verified     string
	verifyTime   time.Duration
	err          error
}

// rates returns records/s and MB/s (10^6 value bytes) of a successful copy of n records of recordSize bytes.
func (m run1) rates(n int) (recPerSec, mbPerSec float64, ok bool) {
	if m.err != nil || m.elapsed <= 0 {
		return 0, 0, false
	}
	s := m.elapsed.Seconds()
	return float64(n) / s, float64(n) * recordSize / 1e6 / s, true
}

// copyRate returns records/s from the first destination record to the last: the copy without start-up.
func (m run1) copyRate(n int) (float64, bool) {
	if m.err != nil || m.firstRecord <= 0 || m.elapsed <= m.firstRecord {
		return 0, false
	}
	return float64(n) / (m.elapsed - m.firstRecord).Seconds(), true
}

func (m run1) oneLine(n int) string {
	r, mb, ok := m.rates(n)
	if !ok {
		return fmt.Sprintf("FAILED: %v", m.err)
	}
	cr, _ := m.copyRate(n)
	verified := "not verified"
	if m.verified != "" {
		verified = fmt.Sprintf("%s (verify took %v)", m.verified, m.verifyTime.Round(time.Millisecond))
	}
	return fmt.Sprintf("%v (first record after %v), %.0f rec/s, %.1f MB/s, %.0f rec/s after the first record, destination %s end offsets %d; %s",
		m.elapsed.Round(time.Millisecond), m.firstRecord.Round(time.Millisecond), r, mb, cr, m.destTopic, m.destRecords, verified)
}

// stats are the min, median and max of a sample.
type stats struct{ min, median, max float64 }

// summarize returns the stats of vs; ok is false for an empty sample. The median of an even count is the
// mean of the middle two.
func summarize(vs []float64) (stats, bool) {
	if len(vs) == 0 {
		return stats{}, false
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stats{min: s[0], median: med, max: s[len(s)-1]}, true
}

func (s stats) String() string {
	return fmt.Sprintf("%s / %s / %s", fmtNum(s.min), fmtNum(s.median), fmtNum(s.max))
}

// fmtNum prints v with about three significant digits.
func fmtNum(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// report is the whole run.
type report struct {
	records, partitions, rounds int
	runs                        []run1
	loads                       []string
	machine                     []string
	elapsed                     time.Duration
	args                        []string // the runner's command-line arguments, for the record
}

// metric is one per-copy number of the report; ok is false when the copy has none.
type metric func(m run1, n int) (float64, bool)

func wholeRate(m run1, n int) (float64, bool) {
	r, _, ok := m.rates(n)
	return r, ok
}

func wholeMB(m run1, n int) (float64, bool) {
	_, mb, ok := m.rates(n)
	return mb, ok
}

func copyRate(m run1, n int) (float64, bool) { return m.copyRate(n) }

func startup(m run1, _ int) (float64, bool) {
	return m.firstRecord.Seconds(), m.err == nil && m.firstRecord > 0
}

// values returns metric f of every copy by tool that has it.
func (rep *report) values(tool string, f metric) []float64 {
	var out []float64
	for _, m := range rep.runs {
		if v, ok := f(m, rep.records); ok && m.tool == tool {
			out = append(out, v)
		}
	}
	return out
}

// ratios returns, per round in which both have it, tool's metric f divided by the baseline's.
func (rep *report) ratios(tool, baseline string, f metric) []float64 {
	byRound := map[int]float64{}
	for _, m := range rep.runs {
		if r, ok := f(m, rep.records); ok && m.tool == baseline {
			byRound[m.round] = r
		}
	}
	var out []float64
	for _, m := range rep.runs {
		r, ok := f(m, rep.records)
		if b, okB := byRound[m.round]; ok && okB && m.tool == tool && b > 0 {
			out = append(out, r/b)
		}
	}
	return out
}

// markdown renders the report file.
func (rep *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Copy throughput: `strom migrate` vs MirrorMaker 2\n\n")
	fmt.Fprintf(&b, "Written by `make bench-mirror` (bench/mirrorcompare). One source topic of %d partitions holding "+
		"%d records of %d bytes (%.0f MB of values) on a single-node Apache Kafka %s, copied to a second "+
		"single-node Kafka %s by each tool in turn, %d rounds, each copy to a destination topic no earlier copy "+
		"wrote. Run took %v.\n\n", rep.partitions, rep.records, recordSize, float64(rep.records)*recordSize/1e6,
		harness.DefaultKafkaVersion, harness.DefaultKafkaVersion, rep.rounds, rep.elapsed.Round(time.Second))
	fmt.Fprintf(&b, "Command: `go run ./bench/mirrorcompare %s`\n\n", strings.Join(rep.args, " "))
	b.WriteString("Cells are min / median / max over the rounds. Times run from the tool's process start (JVM " +
		"start included for MirrorMaker 2) until the destination holds every record: for MirrorMaker 2 with " +
		"exactly-once off the first poll (every 50 ms) at which the destination end offsets add up to N; for " +
		"MirrorMaker 2 with exactly-once on the first poll (every 50 ms) at which its committed source positions " +
		"(its offsets topic, written in the same transactions as the records, read read_committed) reached the " +
		"last offset of every source partition; for strom migrate the process exit (it exits once caught up with " +
		"the source end offsets read at its start and committed). Each strom mode is compared with MirrorMaker 2 " +
		"giving the same guarantee: at-least-once with exactly-once off, exactly-once with exactly-once on.\n\n")
	verifying := false
	for _, m := range rep.runs {
		verifying = verifying || m.verified != ""
	}
	if verifying {
		b.WriteString("Every copy was then checked with `strom verify` (untimed): record count and a digest of key, " +
			"value, headers and timestamp of every committed record, partition by partition; a copy that differs " +
			"counts as failed and has no rate.\n\n")
	}
	b.WriteString("| tool | records/s | MB/s | ratio to MM2, same guarantee (records/s) | s to first record | records/s after first record | ratio to MM2, same guarantee (after first record) | failed rounds |\n|---|---|---|---|---|---|---|---|\n")
	cell := func(vs []float64) string {
		if s, ok := summarize(vs); ok {
			return s.String()
		}
		return "n/a"
	}
	for _, t := range tools {
		failed := 0
		for _, m := range rep.runs {
			if m.tool == t && m.err != nil {
				failed++
			}
		}
		ratio, ratioCopy := "1 (baseline)", "1 (baseline)"
		if base, ok := baselines[t]; ok {
			ratio, ratioCopy = cell(rep.ratios(t, base, wholeRate)), cell(rep.ratios(t, base, copyRate))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %d |\n", t, cell(rep.values(t, wholeRate)),
			cell(rep.values(t, wholeMB)), ratio, cell(rep.values(t, startup)), cell(rep.values(t, copyRate)),
			ratioCopy, failed)
	}
	b.WriteString("\n\"After first record\" divides N by the time from the first record's arrival at the destination " +
		"(polled every 20 ms) to the last: the copy without process start, group join and topic creation.\n")
	b.WriteString("\nEvery copy (destination end offsets: the last stable offsets for exactly-once copies, transaction markers included):\n\n" +
		"| round | tool | destination topic | seconds | s to first record | records/s | MB/s | destination end offsets | strom verify | error |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, m := range rep.runs {
		r, mb, ok := m.rates(rep.records)
		errText, rs, ms, secs := "", "-", "-", "-"
		if ok {
			rs, ms, secs = fmtNum(r), fmtNum(mb), fmtNum(m.elapsed.Seconds())
		} else {
			errText = strings.ReplaceAll(strings.SplitN(m.err.Error(), "\n", 2)[0], "|", "\\|")
		}
		verified := "-"
		if m.verified != "" {
			verified = fmt.Sprintf("%s (%ss)", m.verified, fmtNum(m.verifyTime.Seconds()))
		}
		fmt.Fprintf(&b, "| %d | %s | `%s` | %s | %s | %s | %s | %d | %s | %s |\n", m.round, m.tool, m.destTopic, secs,
			fmtNum(m.firstRecord.Seconds()), rs, ms, m.destRecords, verified, errText)
	}
	b.WriteString("\n## Setup\n\n")
	b.WriteString("- Kafka brokers: the harness' defaults for a single node, default JVM flags (JIT and GC), `-Xmx` from -kafka-heap.\n")
	b.WriteString("- MirrorMaker 2: dedicated mode (`org.apache.kafka.connect.mirror.MirrorMaker`) from the same Kafka " +
		"release's jars, default JVM flags with `-Xmx` from -mm2-heap, `tasks.max=1`, the harness' " +
		"mm2.properties (replication factor 1, checkpoints and heartbeats on). Exactly-once off: source alias " +
		"`s<round>`, so it writes `s<round>.mirror-bench` and starts from a fresh offsets topic.\n")
	b.WriteString("- MirrorMaker 2 exactly-once (as Kafka's geo-replication docs, KIP-618 and KIP-710 require for a new " +
		"dedicated cluster): `dst.exactly.once.source.support = enabled`, `dedicated.mode.enable.internal.rest = true`, " +
		"`listeners = http://127.0.0.1:<free port>`, `e<round>.consumer.isolation.level = read_committed` (without " +
		"it MirrorSourceConnector reports exactly-once as unsupported); source alias `e<round>`, writing " +
		"`e<round>.mirror-bench`. Transaction boundaries are Connect's default (`poll`: one transaction per " +
		"batch the task returns).\n")
	b.WriteString("- strom migrate: `--rename prefix:r<round>-<mode>.` and `--name bench-<round>-<mode>`, other flags " +
		"at their defaults. Exactly-once destinations hold transaction markers, so their end offsets exceed N.\n")
	b.WriteString("- All processes share the machine's cores; the source and destination brokers work during every copy.\n")
	b.WriteString("\n## Machine\n\n")
	for _, l := range rep.machine {
		fmt.Fprintf(&b, "- %s\n", l)
	}
	fmt.Fprintf(&b, "- load average before and after each round: %s\n", strings.Join(rep.loads, " → "))
	return b.String()
}

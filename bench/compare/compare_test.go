package main

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stromhq/strom/bench"
)

func TestParseStatus(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		hwm, rss int64
		bad      bool
	}{
		{"both", "Name:\tjava\nVmPeak:\t  99 kB\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\nThreads: 3\n", 2048 << 10, 1024 << 10, false},
		{"missing rss", "VmHWM:\t2048 kB\n", 0, 0, true},
		{"bad unit", "VmHWM:\t2 MB\nVmRSS:\t1 kB\n", 0, 0, true},
		{"kernel thread", "Name:\tkworker\n", 0, 0, true},
	}
	for _, tt := range tests {
		hwm, rss, err := parseStatus([]byte(tt.in))
		if (err != nil) != tt.bad || hwm != tt.hwm || rss != tt.rss {
			t.Errorf("%s: parseStatus = %d, %d, %v; want %d, %d, bad=%v", tt.name, hwm, rss, err, tt.hwm, tt.rss, tt.bad)
		}
	}
}

func TestParseStatCPU(t *testing.T) {
	// Fields after the command: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
	tests := []struct {
		name string
		in   string
		want float64
		bad  bool
	}{
		{"plain", "42 (strom) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0", 3, false},
		{"spaces and parens in name", "42 (a (b) c) R 1 42 42 0 -1 0 0 0 0 0 7 3 0 0", 0.1, false},
		{"truncated", "42 (x) S 1 2 3", 0, true},
		{"no command", "42 x S", 0, true},
		{"not a number", "42 (x) S 1 42 42 0 -1 0 0 0 0 0 u s 0 0", 0, true},
	}
	for _, tt := range tests {
		got, err := parseStatCPU([]byte(tt.in))
		if (err != nil) != tt.bad || math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("%s: parseStatCPU = %v, %v; want %v, bad=%v", tt.name, got, err, tt.want, tt.bad)
		}
	}
}

func TestReadProcSelf(t *testing.T) {
	s, err := readProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.vmHWM < s.vmRSS || s.vmRSS <= 0 {
		t.Fatalf("VmHWM %d, VmRSS %d: want 0 < RSS <= HWM", s.vmHWM, s.vmRSS)
	}
}

func TestSummarize(t *testing.T) {
	tests := []struct {
		in   []float64
		want stats
		ok   bool
	}{
		{[]float64{3, 1, 2}, stats{1, 2, 3, 3}, true},
		{[]float64{4, 1, 3, 2}, stats{1, 2.5, 4, 4}, true},
		{[]float64{math.NaN(), 5, math.Inf(1)}, stats{5, 5, 5, 1}, true},
		{[]float64{math.NaN()}, stats{}, false},
		{nil, stats{}, false},
	}
	for _, tt := range tests {
		got, ok := summarize(tt.in)
		if ok != tt.ok || got != tt.want {
			t.Errorf("summarize(%v) = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// fakeMeasurement builds a measurement whose throughputs scale with f and latencies with 1/f.
func fakeMeasurement(kind string, round int, f float64) *measurement {
	res := func(recs float64) *bench.Result {
		lat := &bench.Summary{Count: 10, P50: 2 / f, P99: 10 / f, P999: 20 / f, Max: 30 / f, Ladder: []bench.Quantile{
			{Percentile: 50, Millis: 2 / f}, {Percentile: 99, Millis: 10 / f}, {Percentile: 99.9, Millis: 20 / f}}}
		return &bench.Result{RecordsPerSec: recs * f, MBPerSec: recs * f / 1000, Bytes: 1e9, Produce: lat, E2E: lat}
	}
	return &measurement{kind: kind, round: round, startToReady: time.Duration(float64(time.Second) / f),
		cpuStart: 1, cpuWork: 10, peakRSS: int64(400<<20) / int64(f), endRSS: 300 << 20, movedBytes: 2e9,
		produce1K: res(100000), produce100: res(500000), consume1K: res(200000), consume100: res(900000),
		produce1KN: res(150000), produce100N: res(700000), consume1KN: res(250000), consume100N: res(950000),
		consume1KLean: res(400000), consume100Lean: res(1500000), e2e: res(50000), e2eRate: 50000}
}

func TestReport(t *testing.T) {
	rounds := [][2]*measurement{
		{fakeMeasurement("kafka", 1, 1), fakeMeasurement("strom", 1, 2)},
		{fakeMeasurement("kafka", 2, 1), fakeMeasurement("strom", 2, 4)},
		{fakeMeasurement("kafka", 3, 1), fakeMeasurement("strom", 3, 3)},
	}
	// A failed workload shows as n/a and is left out of the ratios.
	rounds[2][1].consume100N = nil
	rounds[2][1].errs = []string{"consume 100B: boom"}
	rep := newReport(options{rounds: 3, duration: time.Second, heap: "1g", clients: 4, nodes: 1, gcPercent: 400, passes: 3}, rounds, time.Minute)
	rep.guestMemory = "free page reporting: paused for the run (order 9 -> 11, restored after)"
	tab := rep.table()
	for _, want := range []string{
		"| produce 1 KiB, acks=all, idempotent, 4 producers | MB/s | 150.0 | 450.0 | 2.00 / 3.00 / 4.00 | >= 1.5x | yes |",
		"| consume 100 B, 4 consumers | records/s | 950000 | 2850000 | 2.00 / 3.00 / 4.00 | >= 1.5x | yes |",
		"| consume 1 KiB, 4 lean consumers | MB/s | 400.0 | 1200 | 2.00 / 3.00 / 4.00 | >= 1.5x | yes |",
		"| produce 1 KiB, acks=all, idempotent, 1 producer | MB/s | 100.0 | 300.0 | 2.00 / 3.00 / 4.00 | >= 1.5x | yes |",
		"| e2e latency p99 | ms | 10.00 | 3.333 | 0.25 / 0.33 / 0.50 | <= 0.5x | yes |",
		"| peak RSS (VmHWM) | MiB | 400.0 | 133.3 |",
		"| process start to ready | s | 1.000 | 0.333 |",
	} {
		if !strings.Contains(tab, want) {
			t.Errorf("table lacks %q:\n%s", want, tab)
		}
	}
	dir := t.TempDir()
	if err := rep.write(dir); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "RESULTS.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Machine", "CPUs (nproc):", "Strom fsyncs the log before", "strom round 3: consume 100B: boom",
		"e2e-latency.png", "| Kafka r1 | Strom r1 |", "GOGC=400", "-consume-passes 3",
		"with 4 consumers (partitions split\n  round-robin, the topic read 3 times over, new clients each pass, the rate over all passes, up to 1s each)",
		"- free page reporting: paused for the run"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("RESULTS.md lacks %q", want)
		}
	}
	// A replicated run says how its topics and its process figures differ.
	rep.opts.nodes = 3
	if err := rep.write(dir); err != nil {
		t.Fatal(err)
	}
	md, err = os.ReadFile(filepath.Join(dir, "RESULTS.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"3 combined broker+controller nodes", "3 `strom serve` nodes",
		"replication factor 3 and min.insync.replicas=2", "-nodes 3"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("RESULTS.md of a 3-node run lacks %q", want)
		}
	}
	for _, png := range []string{"e2e-latency.png", "throughput.png"} {
		b, err := os.ReadFile(filepath.Join(dir, png))
		if err != nil || len(b) < 1000 || string(b[1:4]) != "PNG" {
			t.Errorf("%s: %d bytes, err %v; want a PNG", png, len(b), err)
		}
	}
}

func TestHoldGuestMemory(t *testing.T) {
	tests := []struct {
		name      string
		content   string // "" = no such file
		hold      bool
		during    string // the file's content during the run
		wantState string
	}{
		{name: "no balloon", wantState: "not present", hold: true},
		{name: "reporting on", content: "9\n", hold: true, during: "11", wantState: "paused for the run (order 9 -> 11"},
		{name: "asked not to", content: "9\n", hold: false, during: "9\n", wantState: "on for the run (order 9)"},
		{name: "already off", content: "11\n", hold: true, during: "11\n", wantState: "off before the run (order 11)"},
		{name: "unreadable value", content: "x\n", hold: true, during: "x\n", wantState: "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "page_reporting_order")
			if tt.content != "" {
				if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			g := holdGuestMemory(path, tt.hold)
			if !strings.Contains(g.state, tt.wantState) {
				t.Errorf("state %q, want it to say %q", g.state, tt.wantState)
			}
			if tt.content == "" {
				if err := g.release(); err != nil {
					t.Fatal(err)
				}
				return
			}
			if b, _ := os.ReadFile(path); string(b) != tt.during {
				t.Errorf("during the run the file holds %q, want %q", b, tt.during)
			}
			if err := g.release(); err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(path)
			if strings.TrimSpace(string(b)) != strings.TrimSpace(tt.content) {
				t.Errorf("after the run the file holds %q, want %q", b, tt.content)
			}
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	good := options{rounds: 3, duration: 8 * time.Second, partitions: 8, clients: 4, nodes: 1, passes: 3}
	if err := good.validate(); err != nil {
		t.Fatal(err)
	}
	tuned := good
	tuned.kafkaConfig = "socket.send.buffer.bytes=393216, num.io.threads=4,"
	if props, err := tuned.kafkaProperties(); err != nil || len(props) != 2 ||
		props[0] != [2]string{"socket.send.buffer.bytes", "393216"} || props[1] != [2]string{"num.io.threads", "4"} {
		t.Errorf("kafkaProperties(%q) = %q, %v", tuned.kafkaConfig, props, err)
	}
	for _, mod := range []func(*options){
		func(o *options) { o.rounds = 0 },
		func(o *options) { o.duration = time.Millisecond },
		func(o *options) { o.partitions = 0 },
		func(o *options) { o.clients = 0 },
		func(o *options) { o.clients = 9 }, // more consumers than partitions would idle
		func(o *options) { o.passes = 0 },
		func(o *options) { o.nodes = 0 },
		func(o *options) { o.nodes = 6 },
		func(o *options) { o.kafkaConfig = "socket.send.buffer.bytes" },
		func(o *options) { o.kafkaConfig = "=1" },
		func(o *options) { o.kafkaConfig = "a b=1" },
	} {
		o := good
		mod(&o)
		if err := o.validate(); !errors.Is(err, errBadFlag) {
			t.Errorf("validate(%+v) = %v, want errBadFlag", o, err)
		}
	}
}

func TestTicks125(t *testing.T) {
	var got []string
	for _, tk := range ticks125(3, 250) {
		got = append(got, tk.Label)
	}
	if want := "5 10 20 50 100 200"; strings.Join(got, " ") != want {
		t.Fatalf("ticks125(3, 250) = %v, want %s", got, want)
	}
}

// FuzzParseProc feeds arbitrary bytes to the /proc parsers: they must return an error or sane values,
// never panic.
func FuzzParseProc(f *testing.F) {
	f.Add([]byte("Name:\tstrom\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n"))
	f.Add([]byte("42 (a (b) c) R 1 42 42 0 -1 0 0 0 0 0 7 3 0 0"))
	f.Add([]byte("VmHWM: kB\nVmRSS: -1 kB\n)"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if hwm, rss, err := parseStatus(b); err == nil && (hwm%1024 != 0 || rss%1024 != 0) {
			t.Fatalf("parseStatus = %d, %d: not whole kB", hwm, rss)
		}
		if cpu, err := parseStatCPU(b); err == nil && math.IsNaN(cpu) {
			t.Fatalf("parseStatCPU = NaN")
		}
	})
}

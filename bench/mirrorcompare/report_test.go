package main

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want stats
		ok   bool
	}{
		{"empty", nil, stats{}, false},
		{"one", []float64{3}, stats{3, 3, 3}, true},
		{"even count averages the middle two", []float64{4, 1, 3, 2}, stats{1, 2.5, 4}, true},
		{"odd count", []float64{5, 1, 9}, stats{1, 5, 9}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]float64(nil), tt.in...)
			got, ok := summarize(tt.in)
			if ok != tt.ok || got != tt.want {
				t.Fatalf("summarize(%v) = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.ok)
			}
			for i := range in {
				if in[i] != tt.in[i] {
					t.Fatalf("summarize reordered its input: %v", tt.in)
				}
			}
		})
	}
}

func TestRates(t *testing.T) {
	tests := []struct {
		name            string
		m               run1
		n               int
		rec, mb, copyRS float64
		ok, okCopy      bool
	}{
		{"whole and copy phase", run1{elapsed: 4 * time.Second, firstRecord: 2 * time.Second}, 1000, 250, 0.256, 500, true, true},
		{"no first record", run1{elapsed: 2 * time.Second}, 1000, 500, 0.512, 0, true, false},
		{"failed", run1{elapsed: 2 * time.Second, err: errors.New("x")}, 1000, 0, 0, 0, false, false},
		{"zero time", run1{}, 1000, 0, 0, 0, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, mb, ok := tt.m.rates(tt.n)
			if ok != tt.ok || math.Abs(rec-tt.rec) > 1e-9 || math.Abs(mb-tt.mb) > 1e-9 {
				t.Fatalf("rates = %v, %v, %v; want %v, %v, %v", rec, mb, ok, tt.rec, tt.mb, tt.ok)
			}
			c, okC := tt.m.copyRate(tt.n)
			if okC != tt.okCopy || math.Abs(c-tt.copyRS) > 1e-9 {
				t.Fatalf("copyRate = %v, %v; want %v, %v", c, okC, tt.copyRS, tt.okCopy)
			}
		})
	}
}

func TestReportRatiosAndMarkdown(t *testing.T) {
	rep := &report{records: 1000, partitions: 8, rounds: 2, loads: []string{"1 1 1"}, machine: []string{"CPUs (nproc): 2"},
		args: []string{"-records", "1000"}}
	for r := 1; r <= 2; r++ {
		rep.runs = append(rep.runs,
			run1{tool: toolMM2, round: r, elapsed: 10 * time.Second, firstRecord: 5 * time.Second, destTopic: "s.t"},
			run1{tool: toolMM2EOS, round: r, elapsed: 20 * time.Second, firstRecord: 10 * time.Second, destTopic: "e.t",
				verified: "verify ok: 8 partitions identical", verifyTime: 1500 * time.Millisecond},
			run1{tool: toolStromALO, round: r, elapsed: time.Duration(r) * time.Second, firstRecord: time.Second / 2},
		)
	}
	// Round 2's exactly-once copy failed: it has no rate and no ratio, and the report names the error.
	rep.runs = append(rep.runs, run1{tool: toolStromEOS, round: 1, elapsed: 2 * time.Second},
		run1{tool: toolStromEOS, round: 2, err: errors.New("boom | bang\nmore")})

	if got := rep.ratios(toolStromALO, toolMM2, wholeRate); len(got) != 2 || got[0] != 10 || got[1] != 5 {
		t.Fatalf("ratios at-least-once = %v, want [10 5]", got)
	}
	if got := rep.ratios(toolStromEOS, toolMM2EOS, wholeRate); len(got) != 1 || got[0] != 10 {
		t.Fatalf("ratios exactly-once = %v, want [10]", got)
	}
	// Copy phase: MM2 1000/5s = 200; strom round 1 1000/0.5s = 2000 (x10), round 2 1000/1.5s (x3.33).
	if got := rep.ratios(toolStromALO, toolMM2, copyRate); len(got) != 2 || got[0] != 10 || math.Abs(got[1]-10.0/3) > 1e-9 {
		t.Fatalf("copy ratios = %v", got)
	}
	md := rep.markdown()
	for _, want := range []string{
		"| " + toolMM2 + " | 100 / 100 / 100 | 0.10 / 0.10 / 0.10 | 1 (baseline) | 5.00 / 5.00 / 5.00 | 200 / 200 / 200 | 1 (baseline) | 0 |",
		"| " + toolStromALO + " | 500 / 750 / 1000 |",
		"| 5.00 / 7.50 / 10.0 |",
		// Each strom mode is divided by the MM2 run with its guarantee: exactly-once by MM2 exactly-once.
		"| " + toolStromEOS + " | 500 / 500 / 500 | 0.51 / 0.51 / 0.51 | 10.0 / 10.0 / 10.0 | n/a | n/a | n/a | 1 |",
		"| " + toolMM2EOS + " | 50.0 / 50.0 / 50.0 | 0.05 / 0.05 / 0.05 | 1 (baseline) |",
		"| verify ok: 8 partitions identical (1.50s) |",
		"Every copy was then checked with `strom verify`",
		"boom \\| bang |",
		"- CPUs (nproc): 2",
		"Command: `go run ./bench/mirrorcompare -records 1000`",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "more") {
		t.Errorf("markdown carries the error's second line:\n%s", md)
	}
}

func TestOptionsValidate(t *testing.T) {
	good := options{records: 1, partitions: 1, rounds: 1, timeout: time.Second}
	if err := good.validate(); err != nil {
		t.Fatalf("valid options: %v", err)
	}
	for _, mod := range []func(*options){
		func(o *options) { o.records = 0 }, func(o *options) { o.partitions = 0 },
		func(o *options) { o.rounds = 0 }, func(o *options) { o.timeout = 0 },
	} {
		o := good
		mod(&o)
		if err := o.validate(); !errors.Is(err, errBadFlag) {
			t.Errorf("validate(%+v) = %v, want errBadFlag", o, err)
		}
	}
}

func TestParseMM2Offset(t *testing.T) {
	tests := []struct {
		name       string
		key, value string
		part       int32
		off        int64
		ok         bool
	}{
		{"source position", `["MirrorSourceConnector",{"cluster":"e1","partition":3,"topic":"mirror-bench"}]`, `{"offset":4999}`, 3, 4999, true},
		{"other alias", `["MirrorSourceConnector",{"cluster":"e2","partition":3,"topic":"mirror-bench"}]`, `{"offset":1}`, 0, 0, false},
		{"other topic", `["MirrorSourceConnector",{"cluster":"e1","partition":3,"topic":"x"}]`, `{"offset":1}`, 0, 0, false},
		{"other connector", `["MirrorCheckpointConnector",{"cluster":"e1","partition":3,"topic":"mirror-bench"}]`, `{"offset":1}`, 0, 0, false},
		{"tombstone", `["MirrorSourceConnector",{"cluster":"e1","partition":3,"topic":"mirror-bench"}]`, ``, 0, 0, false},
		{"no offset", `["MirrorSourceConnector",{"cluster":"e1","partition":3,"topic":"mirror-bench"}]`, `{}`, 0, 0, false},
		{"not json", `garbage`, `{"offset":1}`, 0, 0, false},
	}
	for _, tt := range tests {
		part, off, ok := parseMM2Offset([]byte(tt.key), []byte(tt.value), "e1")
		if part != tt.part || off != tt.off || ok != tt.ok {
			t.Errorf("%s: got %d, %d, %v; want %d, %d, %v", tt.name, part, off, ok, tt.part, tt.off, tt.ok)
		}
	}
}

func TestMM2PositionsReached(t *testing.T) {
	ends := map[int32]int64{0: 10, 1: 1, 2: 0}
	tests := []struct {
		pos  map[int32]int64
		want bool
	}{
		{map[int32]int64{}, false},
		{map[int32]int64{0: 9}, false}, // partition 1's only record (offset 0) not copied yet
		{map[int32]int64{0: 8, 1: 0}, false},
		{map[int32]int64{0: 9, 1: 0}, true}, // partition 2 is empty
	}
	for _, tt := range tests {
		p := &mm2Positions{pos: tt.pos}
		if got := p.reached(ends); got != tt.want {
			t.Errorf("reached with positions %v = %v, want %v", tt.pos, got, tt.want)
		}
	}
}
